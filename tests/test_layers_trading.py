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


# the engine side of trading/: what models/ must not reach, directly or through what it imports
ENGINE_SIDE = ("trading.engine", "trading.broker", "trading.simulation", "trading.backtest", "trading.shadow")


def test_models_reach_only_the_pure_side_of_trading() -> None:
    """models/ -> trading/ is the allowed direction, for pure functions only (analysis, gates, parameters,
    the EV arithmetic): nothing a model imports from trading/ pulls in the engine, a broker, the market
    loop or the backtest, so training never builds any of them."""
    from tests.test_import_cycles import imported, project_modules

    modules = project_modules()
    graph = {name: imported(path, name, modules) for name, path in modules.items()}

    def reached(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for dep in graph.get(todo.pop(), set()) - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    bad = {
        f"{m} -> {t}: {sorted(x for x in reached(t) if x.startswith(ENGINE_SIDE))}"
        for m in graph
        if m.startswith("models")
        for t in graph[m]
        if t.startswith("trading") and any(x.startswith(ENGINE_SIDE) for x in reached(t))
    }
    assert not bad, bad
