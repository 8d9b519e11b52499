"""Settings problems as one line each naming the variable; a secret's value never appears."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen
from pydantic.fields import FieldInfo

SECRET_FIELDS = frozenset({"telegram_token", "mt5_password"})


class SettingsError(ValueError):
    """Invalid settings: the message has one line per problem, each naming the variable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.problems = message.splitlines()


def _env_name(loc: tuple[int | str, ...]) -> str:
    return str(loc[0]).upper() if loc else "SETTINGS"


def _num(value: object) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds(field: FieldInfo | None) -> str:
    if field is None:
        return ""
    parts = []
    for m in field.metadata:
        if isinstance(m, Gt):
            parts.append(f"> {_num(m.gt)}")
        elif isinstance(m, Ge):
            parts.append(f">= {_num(m.ge)}")
        elif isinstance(m, Lt):
            parts.append(f"< {_num(m.lt)}")
        elif isinstance(m, Le):
            parts.append(f"<= {_num(m.le)}")
        elif isinstance(m, MaxLen):
            parts.append(f"at most {m.max_length} characters")
    return "must be " + " and ".join(parts) if parts else ""


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def problem_line(error: dict[str, Any], fields: Mapping[str, FieldInfo]) -> str:
    """One pydantic error as `VARIABLE: what is wrong (got value)`, bounds read from the field."""
    loc = error.get("loc", ())
    name = str(loc[0]) if loc else ""
    kind = error.get("type", "")
    secret = name in SECRET_FIELDS
    value = error.get("input")
    got = "" if secret else f" (got {_shown(value)})"
    if kind == "value_error":
        what = str(error.get("ctx", {}).get("error", error.get("msg", "")))
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        what = _bounds(fields.get(name)) + got
    elif kind in {"string_too_short", "too_short"}:
        what = "must not be empty"
    elif kind in {"string_too_long", "too_long"}:
        length = "" if secret or value is None else f" (got {len(value)} characters)"
        what = (_bounds(fields.get(name)) or error.get("msg", "")) + length
    elif kind in {"int_parsing", "int_from_float", "int_type"}:
        what = "must be a whole number" + got
    elif kind in {"float_parsing", "float_type", "finite_number"}:
        what = "must be a number" + got
    elif kind in {"bool_parsing", "bool_type"}:
        what = "must be true or false" + got
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        what = f"must be one of {expected}{got}"
    else:  # pydantic's own wording names the type problem but never echoes the input
        what = str(error.get("msg", kind))
    if len(loc) > 1:
        what = f"item {int(loc[1]) + 1 if isinstance(loc[1], int) else loc[1]}: {what}"
    return f"{_env_name(loc)}: {what}"


def env_file_typos(env_file: str | Path | None, settings: Collection[str]) -> list[str]:
    """One line per key of the .env file that is not a setting but looks like one.

    pydantic-settings ignores unknown keys (extra="ignore"), so `RISK_PER_TRADE=2` would silently
    trade at the default 1 %. Keys with no close setting name (another tool's variables) pass.
    `settings` are the settings' field names.
    """
    if env_file is None or not Path(env_file).is_file():
        return []
    from dotenv import dotenv_values

    names = [n.upper() for n in settings]
    problems = []
    for key in dotenv_values(env_file):
        upper = key.upper()
        if upper in names:
            continue
        near = difflib.get_close_matches(upper, names, n=1, cutoff=0.75)
        if near:
            problems.append(f"{key}: not a setting (in {Path(env_file).name}); did you mean {near[0]}?")
    return problems
