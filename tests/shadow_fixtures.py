"""Challengers better and worse by construction on the synthetic market, for the shadow tests.

The oracle reads the bars after the one being decided (the test knows them): it proposes the side
whose 2 R target the coming bars reach before its 1 R stop, so its trades win by construction; the
anti-oracle proposes the other side with the same distances, so its trades lose. Everything else is
the real analysis (SMC-only), gates, sizing, exits and paper fills.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from trading.analysis import MarketAnalysis
from trading.domain import Side
from trading.engine import TradingEngine
from trading.shadow import BarMemo, ChallengerSpec, ShadowBook, params_to_dict
from trading.simulation import SimClock
from trading.smc import SMCSetup

LOOKAHEAD = 48  # bars the oracle looks ahead


def first_hit(highs: np.ndarray, lows: np.ndarray, up: float, down: float) -> int:
    """+1 when `up` is reached before `down` in the coming bars, -1 for the reverse, 0 for neither or both at once."""
    for h, low in zip(highs, lows, strict=True):
        hit_up, hit_down = h >= up, low <= down
        if hit_up and not hit_down:
            return 1
        if hit_down and not hit_up:
            return -1
        if hit_up and hit_down:
            return 0
    return 0


def oracle(
    frame: pl.DataFrame, base: Callable[[pl.DataFrame], MarketAnalysis], sign: int
) -> Callable[[pl.DataFrame], MarketAnalysis]:
    """An analyzer with the real analysis and a setup chosen from the future (sign -1: the wrong side)."""
    index = {t: i for i, t in enumerate(frame["time"].to_list())}
    highs, lows = frame["high"].to_numpy(), frame["low"].to_numpy()

    def analyze(bars: pl.DataFrame) -> MarketAnalysis:
        a = base(bars)
        i = index[bars["time"][-1]]
        risk = max(a.atr, 1.0) * 1.5
        entry = a.close + a.spread_points * 0.01  # a BUY fills at the ask
        ahead = slice(i + 2, i + 2 + LOOKAHEAD)  # from the bar after the fill's
        buy = first_hit(highs[ahead], lows[ahead], entry + 2 * risk, entry - risk)
        sell = -first_hit(lows[ahead] * -1, highs[ahead] * -1, -(a.close - 2 * risk), -(a.close + risk))
        side = Side.BUY if buy == 1 else Side.SELL if sell == -1 else None
        if side is None:
            return replace(a, setup=None)
        if sign < 0:
            side = side.opposite
        price = entry if side is Side.BUY else a.close
        sl = price - risk * side.sign
        tp = price + 2 * risk * side.sign
        setup = SMCSetup(
            side,
            round(price, 2),
            round(sl, 2),
            round(tp, 2),
            2.0,
            0.9,
            "oracle",
            "FVG",
            max(price, sl),
            min(price, sl),
            a.atr,
        )
        return replace(a, setup=setup, prev_setup_side=side)

    return analyze


def book_factory(
    root: Path, frame: pl.DataFrame, shared: BarMemo, max_challengers: int = 3
) -> Callable[[TradingEngine, SimClock], ShadowBook]:
    """A book whose model "v901" is the oracle and "v902" the anti-oracle; anything else reads the bar
    through `shared` (live's own analysis: the same inputs)."""

    def build(engine: TradingEngine, clock: SimClock) -> ShadowBook:

        def make_analyzer(spec: ChallengerSpec) -> Callable[[pl.DataFrame], MarketAnalysis]:
            if spec.model_version == "v901":
                return oracle(frame, shared, +1)
            if spec.model_version == "v902":
                return oracle(frame, shared, -1)
            return shared

        return ShadowBook(root, make_analyzer, clock, max_challengers=max_challengers)

    return build


def spec(
    number: int, model: str, engine: TradingEngine, params_name: str = "", **params: object
) -> ChallengerSpec:
    chosen = replace(engine.params, **params)  # type: ignore[arg-type]
    from dataclasses import asdict

    return ChallengerSpec(
        number=number,
        model_version=model,
        params_name=params_name,
        params=params_to_dict(chosen),
        limits=asdict(engine.limits),
        start_balance=engine.account.balance if engine.account else 10_000.0,
        started=engine.clock(),
        added_by="test",
    )
