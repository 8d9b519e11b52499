"""handlers/ is below bot/: no handler module imports bot (or research); they get services injected."""

from __future__ import annotations

import ast
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
FORBIDDEN = ("bot", "research", "main")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_handler_imports_bot_or_research() -> None:
    offenders = {
        f"{p.name}: {m}"
        for p in sorted(HANDLERS.glob("*.py"))
        for m in imported_modules(p)
        if m.split(".")[0] in FORBIDDEN
    }
    assert not offenders, offenders


def test_the_check_sees_a_bot_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from bot.context import BotContext\n", encoding="utf-8")
    assert "bot.context" in imported_modules(sample)
