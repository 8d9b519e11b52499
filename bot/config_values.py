"""How settings' raw values are read and shown: lists from the environment, URLs without credentials."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit


def split_list(value: Any) -> Any:
    """`a,b` or `["a","b"]` from the environment; Python lists pass through."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON list ({exc.msg})") from None
        return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def host_only(url: str) -> str:
    """scheme://host[:port] of a URL: no credentials, path or query (they may hold keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
