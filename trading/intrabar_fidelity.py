"""How faithful an intrabar mode is: its bracket-order outcomes against a 1-second synthetic truth
(`bench/intrabar.py`, README)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from trading.synthetic_ticks import SyntheticTruth
from trading.tick_path import TickArrays, TickPath, bar_open_ms


def walk_all(path: TickPath, n_bars: int) -> TickArrays:
    """Every tick of the first `n_bars` bars of `path`, concatenated."""
    parts = [path.ticks(i) for i in range(n_bars)]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


@dataclass(frozen=True, slots=True)
class BracketScore:
    """How a path agrees with the truth on bracket orders (entry at a bar's open, stop and target `d` away)."""

    mode: str
    agreement: float  # share of brackets with the same outcome (target first, stop first, neither)
    timing_error_min: float  # mean |hit time - true hit time| in minutes where both hit the same side
    brackets: int


def bracket_outcomes(
    times: np.ndarray, bid: np.ndarray, bar_ms: np.ndarray, distances: tuple[float, ...], horizon_bars: int
) -> tuple[np.ndarray, np.ndarray]:
    """For a long entry at the first tick of each bar, with a target and a stop `d` away: +1 target first,
    -1 stop first, 0 neither within `horizon_bars`; and the hit time (ms, -1 when none)."""
    starts = np.searchsorted(times, bar_ms, side="left")
    n = bar_ms.size - horizon_bars
    outcome = np.zeros((n, len(distances)), dtype=np.int8)
    when = np.full((n, len(distances)), -1, dtype=np.int64)
    for i in range(n):
        a, b = int(starts[i]), int(starts[i + horizon_bars])
        seg = bid[a:b]
        entry = seg[0]
        for j, d in enumerate(distances):
            up = np.flatnonzero(seg >= entry + d)
            down = np.flatnonzero(seg <= entry - d)
            u = up[0] if up.size else None
            w = down[0] if down.size else None
            if u is not None and (w is None or u < w):
                outcome[i, j], when[i, j] = 1, times[a + u]
            elif w is not None:  # the stop wins a tie (the conservative reading, as the paper broker does)
                outcome[i, j], when[i, j] = -1, times[a + w]
    return outcome, when


def score_paths(
    truth: SyntheticTruth,
    paths: dict[str, TickPath],
    *,
    distances: tuple[float, ...] | None = None,
    horizon_bars: int = 4,
) -> list[BracketScore]:
    """Each path's bracket outcomes against the 1-second truth's (the finer mode must score closer).
    Distances default to 1/4, 1/2 and 1 mean M15 range (stops and targets of the size the bot uses)."""
    n = truth.m15.height
    if distances is None:
        mean_range = float(cast(float, (truth.m15["high"] - truth.m15["low"]).mean()))
        distances = (mean_range / 4, mean_range / 2, mean_range)
    bar_ms = bar_open_ms(truth.m15)
    t_ms = truth.ticks["time_msc"].to_numpy()
    true_out, true_when = bracket_outcomes(
        t_ms, truth.ticks["bid"].to_numpy(), bar_ms, distances, horizon_bars
    )
    scores = []
    for name, path in paths.items():
        times, bid, _ask = walk_all(path, n)
        out, when = bracket_outcomes(times, bid, bar_ms, distances, horizon_bars)
        same = out == true_out
        both = same & (out != 0)
        timing = float(np.mean(np.abs(when[both] - true_when[both]))) / 60_000 if both.any() else 0.0
        scores.append(BracketScore(name, round(float(same.mean()), 4), round(timing, 2), int(out.size)))
    return scores
