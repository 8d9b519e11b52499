"""xaubot: the one entry point. `python main.py --help` lists the commands."""

from __future__ import annotations

import argparse
import logging
import sys


def _cmd_bars(args: argparse.Namespace) -> int:
    from research.bars_report import summary_lines
    from trading.bars import load_bars

    frame = load_bars(args.data, server_tz=args.server_tz, spread=args.spread)
    print("\n".join(summary_lines(frame, args.spread)))
    return 0


def _skipped_tick(record: logging.LogRecord) -> bool:
    return "maximum number of running instances reached" not in record.getMessage()


def quiet_library_logs() -> None:
    """Library chatter off the console: what is left is the bot's own lines and real warnings."""
    logging.getLogger("aiogram").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl SQLiteImpl." at every start
    # max_instances=1 skips a 1-second tick while the previous one (a bar close) still runs: by design,
    # and the loop's timings are in /status; other scheduler warnings still show.
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if _skipped_tick not in scheduler_log.filters:
        scheduler_log.addFilter(_skipped_tick)


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from bot.app import StartupError, run_bot
    from bot.config import SettingsError, load_settings
    from trading.broker.base import BrokerError

    overrides = {
        k: v
        for k, v in (("broker", args.broker), ("paper_replay_speed", args.speed), ("database_path", args.db))
        if v is not None
    }
    if args.replay is not None:
        overrides |= {"paper_feed": "replay", "paper_replay_file": args.replay}
    try:
        settings = load_settings(args.env_file, **overrides)
    except SettingsError as exc:
        for problem in exc.problems:  # one line per problem, each naming the setting
            print(f"configuration error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=settings.log_file,
    )
    quiet_library_logs()
    try:
        return asyncio.run(run_bot(settings, max_seconds=args.max_seconds, console_input=not args.no_console))
    except (
        StartupError,
        BrokerError,
    ) as exc:  # e.g. no MetaTrader5 package on Linux: its message says what to do
        print(f"start-up failed: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xaubot",
        description="Telegram-first XAUUSD M15 trading bot (paper broker by default).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run the bot (paper broker on a synthetic market unless configured)",
        description="Runs the trading bot. Settings come from .env and the environment "
        "(see .env.example); without TELEGRAM_TOKEN commands are typed in this terminal.",
    )
    p.add_argument("--env-file", default=".env", help="settings file (default .env; missing is fine)")
    p.add_argument("--broker", choices=["paper", "mt5", "mt5linux", "dry-run"], help="override BROKER")
    p.add_argument("--speed", type=float, help="paper market speed factor (override PAPER_REPLAY_SPEED)")
    p.add_argument(
        "--replay", metavar="FILE", help="paper broker on a replay of this bars file (parquet or CSV)"
    )
    p.add_argument("--db", metavar="PATH", help="journal database file (override DATABASE_PATH)")
    p.add_argument(
        "--max-seconds",
        "--duration",
        dest="max_seconds",
        type=float,
        metavar="SECONDS",
        help="stop cleanly after this many seconds",
    )
    p.add_argument("--no-console", action="store_true", help="do not read commands from the terminal")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("bars", help="load and validate a bars file (parquet or CSV, MT5 columns)")
    p.add_argument("--data", required=True, help="bars file, time in broker server time")
    p.add_argument(
        "--server-tz", default="NY+7", help="broker server clock: NY+7 (default), UTC+2, or an IANA zone"
    )
    p.add_argument(
        "--spread",
        type=int,
        metavar="POINTS",
        help="assume this constant spread for a file without a spread column (refused otherwise)",
    )
    p.set_defaults(func=_cmd_bars)

    # argument modules only: the commands import polars, numpy, xgboost when they run
    from models.train_cli import add_train_arguments
    from research.backtest_cli import add_backtest_arguments
    from research.download import add_download_arguments  # stdlib-only at import: the parser stays fast
    from research.optimize_cli import add_optimize_arguments

    add_backtest_arguments(sub)
    add_optimize_arguments(sub)
    add_train_arguments(sub)
    add_download_arguments(sub)
    return parser


OWN_PACKAGES = {"bot", "trading", "models", "handlers", "charts", "research", "main"}


def missing_dependency(exc: ModuleNotFoundError) -> str | None:
    """One line for a third-party package this Python lacks (usually: not the project's .venv);
    None for a module of the project itself (a bug: its traceback is the useful part)."""
    name = (exc.name or "").split(".")[0]
    if not name or name in OWN_PACKAGES:
        return None
    return (
        f"error: the Python package '{name}' is not installed for {sys.executable}: "
        "`make run` sets up .venv once; then run `.venv/bin/python main.py ...` "
        "(or `source .venv/bin/activate` first)"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        line = missing_dependency(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the bot's own handler is in place (imports, start-up)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
