"""Console lines for `research.compare`: each fold on its own fresh account, then the verdicts."""

from __future__ import annotations

from typing import Any

from trading.numbers import count


def _r(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}"


def _halt(cell: str, run: dict[str, Any]) -> str:
    return cell + ("*" if run["halted"] else "")


def print_fresh(console: Any, fresh: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        title="each fold on its own fresh account (R: mean R per trade; %: fold return; "
        "*: halted by a loss limit)",
    )
    for name in ("#", "trades", "R", "SMC R", "rand R", "%", "SMC %", "rand %", "B&H %"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in fresh["folds"]:
        s, smc, rnd, bh = row["strategy"], row["smc_only"], row["random"], row["buy_and_hold"]
        table.add_row(
            str(row["fold"]),
            count(s["trades"]),
            _halt(_r(s["mean_r"]), s),
            _halt(_r(smc["mean_r"]), smc),
            _halt(_r(rnd["mean_r"]), rnd),
            _pct(s["return_pct"]),
            _pct(smc["return_pct"]),
            _pct(rnd["return_pct"]),
            _pct(bh["return_pct"]),
        )
    console.print(table)
    sr = fresh["strategy_r"]
    console.print(
        f"Fresh accounts, out of sample: the strategy made {_r(sr['mean'])} R per trade over "
        f"{count(sr['trades'])} trades ({fresh['method']})."
    )
    for line in fresh["verdicts"]:
        console.print(f"  The strategy {line}.")
