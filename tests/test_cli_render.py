"""The CLI as a person sees it: a fast parser, reports readable at 80 columns and in a pipe, clear bad-input lines."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from main import main
from research.backtest_cli import _report
from research.report_text import fmt_counts, fmt_pf

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "polars", "xgboost", "sklearn", "scipy", "hmmlearn", "matplotlib", "aiogram", "sqlalchemy")


def test_building_the_parser_imports_nothing_heavy() -> None:
    code = (
        "import sys; import main; main.build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"build_parser() imported {out.stdout.strip()}"


def _metrics(trades: int, net: float, pf: float | None) -> dict:
    return {
        "trades": trades,
        "win_rate": 0.388,
        "profit_factor": pf,
        "expectancy": -2.01,
        "net_profit": net,
        "final_equity": 5000 + net,
        "max_drawdown_pct": 11.06,
        "sharpe": -4.09,
        "sortino": -2.06,
        "calmar": -2.59,
        "exit_reasons": {"broker_sl": 156, "smart_take_profit": 40},
    }


def test_backtest_report_fits_80_columns_without_python_reprs() -> None:
    out = {
        "from": "2025-09-01 00:00:00+00:00",
        "to": "2025-12-24 05:00:00+00:00",
        "bars": 7524,
        "seconds": 12.3,
        "bars_per_second": 613.3,
        "models": "no models: SMC-only",
        "spread_assumed_points": 25,
        "intrabar": "generated path, 60 ticks a bar (O->L->H->C rising)",
        "detail_share": 0.0,
        "ticks": 13460,
        "ticks_skipped": 437980,
        "command_seconds": 71.0,
        "runs": 4,
        "sensitivity": {
            "against": "the other vertex order",
            "trades": 248,
            "net_profit": -49801.1,
            "profit_factor": None,
            "delta_net_profit": 611.25,
        },
        **_metrics(250, -50412.35, 0.68),
        "gate_blocks": {"risk_mode": 3513, "session": 2047},
        "baselines": {
            "buy_and_hold": _metrics(1, 2094.44, None),
            "smc_only": _metrics(250, -501.35, 0.68),
            "random": _metrics(267, -521.52, 0.75),
        },
        "versus": {
            "verdicts": [
                "does worse than SMC-only: difference -0.21 R per trade, 95% CI -0.35…-0.08",
                "does not beat random entries: difference -0.03 R per trade, 95% CI -0.11…+0.05 "
                "(the interval holds zero: within chance)",
            ]
        },
    }
    buf = io.StringIO()
    _report(Console(file=buf, width=80), out)
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.count("…") == 2 and "None" not in text and "{" not in text  # the two CIs' "…", nothing cut
    assert "-$50,412.35" in text and "strategy" in text and "no loss" in text
    assert "broker_sl 156, smart_take_profit 40" in text
    assert "spread ASSUMED 25 points" in text
    flat = " ".join(text.split())
    assert "0.0% of bars with real detail" in flat and "moves by +$611.25" in flat
    # one style: signed dollars with separators, counts with separators, no "$+"
    assert "$+" not in text and "$-" not in text and "+$2,094.44" in text and "7,524 bars" in text
    # the range in WIB with its UTC hours, not a raw datetime
    assert "Backtest 01 Sep 2025 07:00 → 24 Dec 2025 12:00 WIB (00:00 → 05:00 UTC)" in text
    assert "+00:00" not in text
    # the tick counts say what they are: on the path, stepped, taken in one go
    assert "451,440 ticks on the path" in flat and "13,460 stepped one by one" in flat
    assert "437,980 taken in one go where no rule could act" in flat
    # both speeds, each saying what it covers
    assert "strategy run 12.3 s (613 bars/s, analysis included)" in flat
    assert "whole command 71.0 s (424 bars/s over its 4 runs, with loading)" in flat
    # one voice: the verdict is the statistics' (R per trade with its CI), the net figures stay in the table
    assert "best baseline" not in flat and "-$501.35" in text
    assert (
        flat.count("The strategy ") == 2
        and "The strategy does worse than SMC-only: difference -0.21 R" in flat
    )
    assert "The strategy does not beat random entries" in flat and "within chance)." in flat


def test_backtest_report_without_baselines_gives_no_verdict() -> None:
    out = {
        "from": "2025-09-01 00:00:00+00:00",
        "to": "2025-09-24 05:00:00+00:00",
        "bars": 2000,
        "seconds": 2.0,
        "bars_per_second": 1000.0,
        "models": "no models: SMC-only",
        "spread_assumed_points": None,
        "intrabar": "generated",
        "detail_share": 0.0,
        "ticks": 10,
        "ticks_skipped": 90,
        "command_seconds": 3.0,
        "runs": 2,
        "sensitivity": {
            "against": "the other vertex order",
            "trades": 10,
            "net_profit": 10.0,
            "profit_factor": 1.2,
            "delta_net_profit": 1.0,
        },
        **_metrics(10, 12.0, 1.3),
        "gate_blocks": {},
    }
    buf = io.StringIO()
    _report(Console(file=buf, width=80), out)
    assert "The strategy" not in buf.getvalue() and "+$12.00" in buf.getvalue()


def test_report_lines_break_between_phrases() -> None:
    from research.report_text import phrase_lines

    phrases = [f"phrase number {i} with some words" for i in range(8)]
    lines = phrase_lines("intro: ", phrases, width=60)
    assert all(len(line) <= 60 for line in lines) and len(lines) > 1
    joined = " ".join(line.strip() for line in lines)
    assert joined == "intro: " + ", ".join(phrases)  # every break falls between two phrases


def test_piped_progress_prints_plain_lines_at_most_every_few_seconds() -> None:
    from research.report_text import PlainProgress

    now = [0.0]
    out = io.StringIO()
    track = PlainProgress(out, every=10, clock=lambda: now[0]).tracker("strategy")
    for done in range(0, 11_800, 500):
        now[0] += 1.0
        track(done, 11_800)
    track(11_800, 11_800)
    lines = out.getvalue().splitlines()
    assert lines[0] == "strategy: 4,500 of 11,800 bars, 10 s (38%)"
    assert lines[-1] == "strategy: 11,800 of 11,800 bars, 24 s (done)"
    assert len(lines) == 3


def test_piped_progress_names_its_unit_and_the_stage() -> None:
    from research.report_text import PlainProgress

    now = [0.0]
    out = io.StringIO()
    track = PlainProgress(out, every=10, clock=lambda: now[0], unit="folds").tracker("walk-forward")
    track(0, 3, "fold 1/3: training")
    now[0] = 12.0
    track(1, 3, "fold 2/3: training")
    now[0] = 30.0
    track(3, 3)
    assert out.getvalue().splitlines() == [
        "walk-forward: 1 of 3 folds, 12 s (33%; fold 2/3: training)",
        "walk-forward: 3 of 3 folds, 30 s (done)",
    ]


def test_stage_lines_are_plain_when_piped() -> None:
    from research.report_text import status_lines

    out = io.StringIO()
    with status_lines(Console(file=io.StringIO()), "preparing the windows", out) as say:
        say("fold 1: analysis")
    assert out.getvalue().splitlines() == ["preparing the windows", "fold 1: analysis"]


def test_table_cell_helpers() -> None:
    assert fmt_pf({"profit_factor": None, "trades": 0, "net_profit": 0.0}) == "n/a"
    assert fmt_pf({"profit_factor": 1.234}) == "1.23"
    assert fmt_counts({}) == "none"


MT5_EXPORT = (
    "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    "2025.01.06\t10:00:00\t2650.00\t2651.00\t2649.00\t2650.50\t120\t0\t25\n"
    "2025.01.06\t10:15:00\t2650.50\t2652.00\t2649.00\t2650.70\t98\t0\t27\n"
)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "is empty"),
        ("empty.parquet", b"", "is empty"),
        ("garbage.parquet", b"this is not parquet at all", "not a readable parquet"),
        ("header.csv", b"time,open,high,low,close,tick_volume,spread,real_volume\n", "no bars"),
        ("renamed.csv", b"when,o,h,l,c\n2025-01-06 10:00,1,2,0.5,1.5\n", "no column(s) time, open"),
        (
            "ohlc.csv",
            b"time,open,high,low,close\n2025-01-06 10:00:00,2650,2651,2649,2650.5\n",
            "--spread POINTS",
        ),
    ],
)
def test_bad_bars_files_get_one_clear_line(tmp_path, capsys, name, content, expected) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["bars", "--data", str(path)]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_ohlc_only_file_with_an_explicit_spread_says_so(tmp_path, capsys) -> None:
    path = tmp_path / "ohlc.csv"
    path.write_text("time,open,high,low,close\n2025-01-06 10:00:00,2650,2651,2649,2650.5\n")
    assert main(["bars", "--data", str(path), "--spread", "25"]) == 0
    assert "spread ASSUMED 25 points" in capsys.readouterr().out


def test_metatrader5_history_export_is_read(tmp_path) -> None:
    from trading.bars import load_bars

    path = tmp_path / "XAUUSD_M15.csv"
    path.write_text(MT5_EXPORT)
    frame = load_bars(path, server_tz="UTC+2")
    assert (
        frame.height == 2
        and frame["spread"].to_list() == [25, 27]
        and frame["tick_volume"].to_list() == [120, 98]
    )
    assert str(frame["time"][0]) == "2025-01-06 08:00:00+00:00"
    with pytest.raises(ValueError, match="own spread column"):
        load_bars(path, spread=20)


def test_run_with_mt5_on_linux_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "empty.env").write_text("")
    try:
        import MetaTrader5  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the MetaTrader5 package is installed here")
    code = main(
        [
            "run",
            "--broker",
            "mt5",
            "--no-console",
            "--db",
            str(tmp_path / "j.db"),
            "--max-seconds",
            "1",
            "--env-file",
            str(tmp_path / "empty.env"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and "MetaTrader5 package is not installed" in err


def test_library_chatter_is_quiet_but_real_warnings_show(caplog) -> None:
    import logging

    from main import quiet_library_logs

    quiet_library_logs()
    with caplog.at_level(logging.INFO):
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
        sched = logging.getLogger("apscheduler.scheduler")
        sched.warning('Execution of job "trading" skipped: maximum number of running instances reached (1)')
        sched.warning("Scheduler started with a broken job store")
    assert [r.getMessage() for r in caplog.records] == ["Scheduler started with a broken job store"]


def test_walk_forward_report_fits_80_columns() -> None:
    from research.walkforward_cli import _report as wf_report

    fold = {
        "fold": 1,
        "train_from": "2025-07-16 15:00:00+00:00",
        "train_to": "2025-09-16 15:00:00+00:00",
        "test_from": "2025-09-16 15:15:00+00:00",
        "test_to": "2025-10-16 15:00:00+00:00",
        "model_auc": 0.5123,
        "test_auc": None,
        "trades": 123,
        "net_profit": -504.2,
        "win_rate": 0.41,
        "smc_only_trades": 130,
        "smc_only_net_profit": -612.3,
    }
    m = {
        "trades": 250,
        "win_rate": 0.4,
        "profit_factor": None,
        "net_profit": -50412.35,
        "final_equity": 4500.0,
        "max_drawdown_pct": 11.06,
        "sharpe": -4.09,
        "sortino": None,
    }
    wf = {
        "folds": [fold, fold],
        "out_of_sample_bars": 6000,
        "train_bars": 6000,
        "test_bars": 1500,
        "step": 1500,
        "overall": m,
        "smc_only": m,
        "gate_blocks": {"risk_mode": 3513},
        "untested_bars": 0,
        "baselines": {"smc_only": m, "random": m, "buy_and_hold": {**m, "trades": 1, "net_profit": 1426.88}},
        "halts": [
            {
                "start": "2025-09-30 14:00:00+00:00",
                "end": None,
                "reason": "total loss $512 reached the limit $500",
                "bars": 5411,
                "setups_blocked": 3100,
            }
        ],
        "baseline_halts": {},
    }
    buf = io.StringIO()
    wf_report(
        Console(file=buf, width=80),
        {
            "walk_forward": wf,
            "from": "2025-07-16",
            "to": "2025-12-24",
            "seconds": 100.2,
            "spread_assumed_points": 30,
        },
    )
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "None" not in text and "{" not in text
    assert "-50,412.35" in text and "risk_mode 3,513" in text and "spread ASSUMED 30 points" in text
    assert "buy-and-hold" in text and "strategy halted 2025-09-30 14:00" in " ".join(text.split())
    assert "5,411 bars without entries, 3,100 of them with a setup" in " ".join(text.split())


@pytest.mark.parametrize("command", [["bars", "--data", "x.parquet"], ["run", "--duration", "1"]])
def test_a_missing_dependency_is_one_line_naming_the_venv(command: list[str]) -> None:
    """`python main.py ...` outside the venv: one line saying what to run, not a traceback."""
    code = (
        "import sys; sys.modules['polars'] = None; import main; "  # as if polars were not installed
        f"sys.exit(main.main({command!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "'polars' is not installed" in lines[0] and ".venv/bin/python main.py" in lines[0]
    )


def test_bars_summary_names_spread_and_gaps_by_kind(capsys) -> None:
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from research.bars_report import summary_lines

    start = datetime(2025, 7, 2, 0, 0, tzinfo=UTC)  # a Wednesday
    times = [start + timedelta(minutes=15 * i) for i in range(4 * 24 * 6)]
    # the daily break (21:00-22:00 UTC), the weekend from Friday 21:00, and a hole on Monday 10:00-11:30
    keep = [
        t
        for t in times
        if t.hour != 21
        and not (t.weekday() == 4 and t.hour >= 21)
        and t.weekday() != 5
        and not (t.weekday() == 6 and t.hour < 22)
        and not (t.weekday() == 0 and (10, 0) <= (t.hour, t.minute) < (11, 30))
    ]
    frame = pl.DataFrame({"time": keep, "spread": [10 + i % 20 for i in range(len(keep))]})
    lines = summary_lines(frame)
    assert lines[0].startswith(f"{len(keep):,} bars, 02 Jul 2025 07:00 → ")
    assert lines[1] == "spread (points): median 19, 90th percentile 27, widest 29"
    assert lines[2] == "gaps: 1 weekend, 3 daily breaks (expected); 1 more to look at:"
    assert lines[3] == "  Mon 07 Jul 10:00 → Mon 07 Jul 11:30 UTC (1 h 30 min)"
    assert summary_lines(frame, assumed_spread=25)[1].startswith("spread ASSUMED 25 points")
