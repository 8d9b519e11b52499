"""The `optimize` report: every figure as plain data, then printed, plotted, judged.

Only scored trials (those that traded at least the minimum over the folds) can be chosen, enter the
deflated Sharpe ratio's spread of Sharpe ratios or the CSCV matrix, or give a sensitivity change.
When none is scored there is no chosen set: the report says so in words (how many trades each trial
had, what to change) and shows the defaults and the baselines on the hold-out only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from research import optimize as opt
from trading.numbers import count, pct, signed_usd


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    return {
        k: m[k]
        for k in (
            "trades",
            "win_rate",
            "profit_factor",
            "net_profit",
            "final_equity",
            "max_drawdown_pct",
            "sharpe",
        )
    }


def small_budget_advice(records: list[opt.TrialRecord], data: opt.OptimizationData) -> str:
    """Why no trial was scored, and what would change that, in words."""
    trades = [r.trades for r in records]
    fold_bars = sum(w.bars.height - data.config.warmup_bars for w in data.folds)
    shown = ", ".join(str(t) for t in trades[:20]) + (", …" if len(trades) > 20 else "")
    ways = [
        "more bars (a longer file, or fewer --holdout-bars)",
        "fewer --folds (longer windows, more trades each)",
        "more --trials (the sampler moves towards sets that trade)",
    ]
    if data.uses_models:
        ways.append("--smc-only (the ML gates kept most setups out)")
    ways.append(f"a lower --min-trades (now {data.min_trades})")
    return (
        f"no trial traded at least {data.min_trades} times over the {len(data.folds)} fold windows "
        f"({count(fold_bars)} bars): trades per trial {shown} (most {max(trades, default=0)}). "
        f"To get a scored trial, try {'; '.join(ways)}."
    )


def build_report(study: Any, data: opt.OptimizationData, executor: Any) -> dict[str, Any]:
    from research.baselines import buy_and_hold_chained
    from research.overfitting import cscv_pbo, deflated_sharpe
    from trading.returns import sharpe

    records = opt.trial_records(study)
    if not records:
        raise ValueError("the study holds no complete trial")
    scored = [r for r in records if r.scored and r.trades >= data.min_trades]
    best = max(scored, key=lambda r: (r.objective, -r.number)) if scored else None
    defaults = opt.default_values(data.space)
    chosen = {k: best.values[k] for k in data.space} if best is not None else None
    around = opt.neighbours(chosen, data.space) if chosen is not None else []
    scores = executor.map([defaults] + [v for _, _, v in around])
    default_folds, around_scores = scores[0], scores[1:]
    sensitivity = []
    for (name, value, _), s in zip(around, around_scores, strict=True):
        row: dict[str, Any] = {
            "param": name,
            "value": value,
            "trades": s.metrics["trades"],
            "scored": s.scored,
            "objective": round(s.objective, 4),
            "change": None,
        }
        if s.scored and best is not None:
            row["change"] = round(s.objective - best.objective, 4)
        sensitivity.append(row)
    played = chosen if chosen is not None else defaults  # the baselines take the searched numbers they share
    holdout = {
        "defaults": opt.score(defaults, data, [data.holdout]),
        "smc_only": opt.score(played, data, [data.holdout], "smc_only"),
        "random": opt.score(played, data, [data.holdout], "random"),
    }
    if chosen is not None:
        holdout = {"chosen": opt.score(chosen, data, [data.holdout]), **holdout}
    holdout_metrics = {
        k: {**_brief(s.metrics), "objective": round(s.objective, 4)} for k, s in holdout.items()
    }
    holdout_metrics["buy_and_hold"] = _brief(buy_and_hold_chained([data.holdout.bars], data.config))
    reasons: list[str] = []
    dsr_out = pbo = None
    if best is not None:
        rows = [r for r in scored if len(r.daily_returns) == len(best.daily_returns)]
        dsr = deflated_sharpe(
            np.asarray(best.daily_returns),
            len(records),
            np.array([sharpe(np.asarray(r.daily_returns)) for r in rows]),
        )
        dsr_out = {
            "dsr": round(dsr.probability, 4),
            "sharpe_daily": round(dsr.sharpe, 4),
            "sr0_daily": round(dsr.benchmark, 4),
            "days": dsr.n_obs,
            "trials": dsr.n_trials,
            "skew": round(dsr.skew, 3),
            "kurtosis": round(dsr.kurt, 3),
        }
        blocks = opt.cscv_blocks(len(best.daily_returns))
        if len(rows) >= 2 and blocks is not None:
            res = cscv_pbo(np.column_stack([np.asarray(r.daily_returns) for r in rows]), blocks=blocks)
            pbo = {
                "pbo": round(res.pbo, 4),
                "splits": res.n_splits,
                "blocks": res.blocks,
                "variants": len(rows),
                "median_logit": round(float(np.median(res.logits)), 4),
            }
        v = opt.verdict(holdout_metrics, dsr.probability, None if pbo is None else pbo["pbo"])
        reasons = v.reasons
        if pbo is None:
            reasons.append(
                f"only {len(rows)} scored trial(s): the probability of backtest overfitting needs "
                "at least 2 and could not be measured"
            )
    else:
        reasons.append(small_budget_advice(records, data))
    changes = [s["change"] for s in sensitivity if s["change"] is not None]
    return {
        "trials": len(records),
        "scored_trials": len(scored),
        "min_trades": data.min_trades,
        "trades_per_trial": [[r.number, r.trades] for r in records],
        "chosen": None
        if best is None
        else {
            "number": best.number,
            "values": chosen,
            "folds_objective": round(best.objective, 4),
            "folds_trades": best.trades,
            "folds_net_profit": best.net_profit,
        },
        "defaults": defaults,
        "folds": {
            "defaults_objective": round(default_folds.objective, 4) if default_folds.scored else None,
            "defaults_scored": default_folds.scored,
            "defaults": _brief(default_folds.metrics),
            "defaults_halts": list(default_folds.halts),
        },
        "holdout": holdout_metrics,
        "holdout_halts": {k: list(s.halts) for k, s in holdout.items()},
        "deflated_sharpe": dsr_out,
        "pbo": pbo,
        "sensitivity": sensitivity,
        "sensitivity_worst_change": round(min(changes), 4) if changes else None,
        "verdict": {"survives": best is not None and not reasons, "reasons": reasons},
        "trial_objectives": [[r.number, round(r.objective, 4)] for r in scored],
    }


def plot(path: Path, study_name: str, out: dict[str, Any]) -> None:
    """Scored trials' fold Sharpe; with none scored, each trial's trade count against the minimum."""
    from charts.optimize import trials_chart

    if out["scored_trials"]:
        numbers, scores = zip(*out["trial_objectives"], strict=True)
        hidden = out["trials"] - out["scored_trials"]
        ref = out["folds"]["defaults_objective"]
        png = trials_chart(
            list(numbers),
            list(scores),
            chosen=out["chosen"]["number"],
            reference=ref,
            title=f"Study {study_name}: trials",
            score_label="annualised Sharpe, folds",
            note=f"{hidden} with fewer than {out['min_trades']} trades not scored" if hidden else "",
        )
    else:
        numbers, trades = zip(*out["trades_per_trial"], strict=True)
        png = trials_chart(
            list(numbers),
            [float(t) for t in trades],
            reference=float(out["min_trades"]),
            reference_label=f"minimum {out['min_trades']} trades",
            title=f"Study {study_name}: no trial traded enough to be scored",
            score_label="trades over the folds",
        )
    path.write_bytes(png)


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _sharpe(objective: float | None, scored: bool, trades: int) -> str:
    return (
        f"Sharpe {objective:.2f}"
        if scored and objective is not None
        else f"not scored ({count(trades)} trades)"
    )


def render(console: Any, out: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    w = out["windows"]
    console.print(
        f"[bold]Optimisation[/bold] study {out['study']!r}: {count(out['trials'])} trials, "
        f"{count(out['scored_trials'])} scored ({count(out['trials_run_now'])} now, "
        f"{out['trials_per_minute'] or 'n/a'} trials/min, workers {out['workers']}, batch {out['batch']}, "
        f"seed {out['seed']})"
    )
    console.print(
        "scored on "
        + ", ".join(f"{x['name']} {x['from'][:10]}→{x['to'][:10]}" for x in w[:-1])
        + f"; hold-out (never searched) {w[-1]['from'][:10]}→{w[-1]['to'][:10]}; a set needs "
        f"{count(out['min_trades'])} trades over the folds to be scored"
    )
    chosen, folds = out["chosen"], out["folds"]
    d = folds["defaults"]
    defaults_line = f"defaults {_sharpe(folds['defaults_objective'], folds['defaults_scored'], d['trades'])}"
    if chosen is None:
        sharpe_note = (
            f", Sharpe {folds['defaults_objective']:.2f}"
            if folds["defaults_scored"]
            else ", too few to be scored either"
        )
        console.print(
            f"[yellow]No trial was scored, so no set is chosen.[/yellow] On the folds the defaults made "
            f"{count(d['trades'])} trades, {signed_usd(d['net_profit'])}{sharpe_note}."
        )
    else:
        params = Table(
            "parameter", "chosen", "default", "worst Δ one step", box=box.SIMPLE_HEAD, pad_edge=False
        )
        for k, v in chosen["values"].items():
            steps = [s for s in out["sensitivity"] if s["param"] == k]
            changes = [s["change"] for s in steps if s["change"] is not None]
            cell = (
                f"{min(changes):+.2f}"
                if changes
                else "not scored (" + "/".join(count(s["trades"]) for s in steps) + " trades)"
                if steps
                else "n/a"
            )
            params.add_row(k, f"{v:g}", f"{out['defaults'][k]:g}", cell)
        console.print(params)
        console.print(
            f"folds (out of sample): chosen Sharpe {chosen['folds_objective']:.2f} "
            f"({count(chosen['folds_trades'])} trades, {signed_usd(chosen['folds_net_profit'])}), "
            f"{defaults_line} ({count(d['trades'])} trades, {signed_usd(d['net_profit'])})"
        )
    table = Table(
        "hold-out", "trades", "win", "PF", "net $", "DD %", "Sharpe", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for name, m in out["holdout"].items():
        table.add_row(
            name.replace("_", " "),
            count(m["trades"]),
            pct(m["win_rate"], 0),
            _num(m["profit_factor"]),
            signed_usd(m["net_profit"]),
            _num(m["max_drawdown_pct"]),
            _num(m["sharpe"]),
        )
    console.print(table)
    for name, halts in out["holdout_halts"].items():
        for h in halts:
            console.print(
                f"hold-out {name}: halted {h['start'][:16]} → {(h['end'] or 'end of data')[:16]} "
                f"({h['reason']}): {h['bars']} bars, {h['setups_blocked']} with a setup kept out"
            )
    dsr = out["deflated_sharpe"]
    if dsr is not None:
        console.print(
            f"deflated Sharpe ratio {dsr['dsr']:.2f} (daily Sharpe {dsr['sharpe_daily']:.3f} vs "
            f"{dsr['sr0_daily']:.3f} expected from the best of {dsr['trials']} skill-less trials, "
            f"{dsr['days']} days)"
        )
    if out["pbo"]:
        p = out["pbo"]
        console.print(
            f"probability of backtest overfitting (CSCV, {p['blocks']} blocks, {p['splits']} splits, "
            f"{p['variants']} scored trials): {p['pbo']:.0%}"
        )
    if out["sensitivity_worst_change"] is not None:
        console.print(
            f"one grid step around the chosen point: the fold Sharpe changes by at worst "
            f"{out['sensitivity_worst_change']:+.2f}"
        )
    elif chosen is not None:
        console.print("one grid step around the chosen point: no neighbour traded enough to be scored")
    if out["verdict"]["survives"]:
        console.print(
            f"[green]The chosen set survives every check.[/green] Proposal written to {out['proposal']} "
            "(no setting was changed)."
        )
    else:
        console.print("[yellow]No edge found: the defaults stay as they are.[/yellow]")
        for reason in out["verdict"]["reasons"]:
            console.print(f"  - {reason}")
    console.print(f"plot of the trials: {out['plot']}")
