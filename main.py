"""xaubot: the one entry point. `python main.py --help` lists the commands."""

from __future__ import annotations

import argparse
import sys


def _cmd_bars(args: argparse.Namespace) -> int:
    from trading.bars import load_bars

    frame = load_bars(args.data, server_tz=args.server_tz)
    print(f"{frame.height} bars, {frame['time'][0]} .. {frame['time'][-1]} (UTC)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xaubot",
        description="Telegram-first XAUUSD M15 trading bot (paper broker by default).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("bars", help="load and validate a bars file (parquet or CSV, MT5 columns)")
    p.add_argument("--data", required=True, help="bars file, time in broker server time")
    p.add_argument("--server-tz", default="NY+7", help="broker server clock: NY+7 (default), UTC+2, or an IANA zone")
    p.set_defaults(func=_cmd_bars)

    from bot.backtest_cli import add_backtest_arguments
    from models.training import add_train_arguments

    add_backtest_arguments(sub)
    add_train_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
