"""trading/ is the floor the rest stands on (ARCHITECTURE.md, "Layers"): no module under it imports
models/ (models are handed to the engine through protocols; the arithmetic without fitted state lives
in trading/), the bot, the handlers, research, charts, Telegram, the scheduler or the database. Every
import counts: at the top, inside a function or under TYPE_CHECKING, read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

TRADING = Path(__file__).resolve().parents[1] / "trading"
FORBIDDEN = (
    "models",
    "bot",
    "handlers",
    "research",
    "charts",
    "main",
    "aiogram",
    "apscheduler",
    "sqlalchemy",
)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of what `path` imports anywhere in it (relative imports stay inside trading/)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(root: Path) -> set[str]:
    return {
        f"{p.relative_to(root.parent)}: {m}"
        for p in sorted(root.rglob("*.py"))
        for m in imported_modules(p)
        if m.split(".")[0] in FORBIDDEN
    }


def test_no_trading_module_imports_models_or_the_layers_above() -> None:
    assert offenders(TRADING) == set()


def test_the_check_sees_models_imports_anywhere(tmp_path: Path) -> None:
    package = tmp_path / "trading"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from models.ev import EVGate\n",
        encoding="utf-8",
    )
    (package / "sub" / "b.py").write_text("def f():\n    import models.live\n", encoding="utf-8")
    (package / "c.py").write_text("from models import confidence\n", encoding="utf-8")
    (package / "d.py").write_text("from trading.models_view import x\nimport modelsx\n", encoding="utf-8")
    assert offenders(package) == {
        "trading/a.py: models.ev",
        "trading/sub/b.py: models.live",
        "trading/c.py: models",
    }
