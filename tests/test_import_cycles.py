"""No two of the project's files import each other (ARCHITECTURE.md, "Layers"): every import counts,
at the top, inside a function or under TYPE_CHECKING, read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "trading", "models", "research", "charts")
ALLOWED: set[frozenset[str]] = set()  # no pair at all (TYPE_CHECKING imports count too)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")] + [ROOT / "main.py"]
    return {module_name(p): p for p in files}


def imported(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` (module `name`) imports anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import module` imports the module; `from module import name`, the module
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        out.update(t for t in targets if t in modules and t != name)
    return out


def test_no_two_files_import_each_other() -> None:
    modules = project_modules()
    graph = {name: imported(path, name, modules) for name, path in modules.items()}
    pairs = {frozenset({a, b}) for a, deps in graph.items() for b in deps if a in graph.get(b, set())}
    assert pairs - ALLOWED == set(), sorted(sorted(p) for p in pairs - ALLOWED)


def test_the_scan_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.app import App\n"
        "def f():\n    from trading import engine\n    import models.live\n"
    )
    path = ROOT / "bot" / "scheduler.py"
    modules = {"bot.app": path, "trading.engine": path, "models.live": path, "bot.scheduler": path}
    probe = tmp_path / "scheduler.py"
    probe.write_text(source)
    assert imported(probe, "bot.scheduler", modules) == {"bot.app", "trading.engine", "models.live"}
