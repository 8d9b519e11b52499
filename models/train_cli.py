"""The `train` and `evaluate` subcommands' arguments: importing this builds the parser only.

The commands themselves live in `models.train_commands`, which pulls numpy, xgboost and hmmlearn; they
are imported when a command runs, so `main.py --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_MODELS_DIR = "data/models"


def _run_train(args: argparse.Namespace) -> int:
    from models.train_commands import _cmd_train

    return _cmd_train(args)


def _run_evaluate(args: argparse.Namespace) -> int:
    from models.train_commands import _cmd_evaluate

    return _cmd_evaluate(args)


def add_train_arguments(subparsers: Any) -> None:
    """Register the `train` and `evaluate` subcommands on main.py's subparsers."""
    for name, help_text, func in (
        (
            "train",
            "walk-forward train the HMM regime and XGBoost signal, store a new registry version",
            _run_train,
        ),
        (
            "evaluate",
            "score the active (or --version) models on a bars file (e.g. newer data)",
            _run_evaluate,
        ),
    ):
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument(
            "--data", required=True, help="bars file (parquet or CSV, MT5 columns, broker server time)"
        )
        p.add_argument(
            "--models-dir", default=DEFAULT_MODELS_DIR, help="model registry folder (default data/models)"
        )
        p.add_argument(
            "--json", metavar="PATH", help="write the figures as one JSON object to PATH ('-' = stdout)"
        )
        p.add_argument("--server-tz", default="NY+7", help="broker server clock (default NY+7)")
        p.add_argument(
            "--spread",
            type=int,
            metavar="POINTS",
            help="assume this constant spread for a file without a spread column",
        )
        if name == "evaluate":
            p.add_argument(
                "--version",
                metavar="vNNN",
                help="score this stored version (a rejected one too) instead of the active one; "
                "nothing is activated",
            )
        if name == "train":
            p.add_argument("--folds", type=int, default=4, help="walk-forward folds (default 4)")
            p.add_argument(
                "--test-size",
                type=int,
                default=300,
                help="setups per test (and validation) block (default 300)",
            )
            p.add_argument(
                "--commission",
                type=float,
                default=None,
                metavar="USD",
                help="commission per lot per deal in the EV gate's costs "
                "(default: StrategyParams.ml_commission_per_lot, 0)",
            )
            act = p.add_mutually_exclusive_group()
            act.add_argument(
                "--no-activate", action="store_true", help="store the version without activating it"
            )
            act.add_argument(
                "--activate",
                action="store_true",
                help="activate even without a demonstrated edge (registry validation still applies)",
            )
        p.set_defaults(func=func)
