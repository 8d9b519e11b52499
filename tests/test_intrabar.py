"""Intrabar path, SL/TP hits (both touched -> SL, gaps fill at the open) and tick synthesis."""

from __future__ import annotations

import numpy as np
import pytest

from trading.broker.intrabar import price_path, stop_hit, synthesise_path, touch_fraction
from trading.domain import DealReason, Side


def test_path_visits_nearer_extreme_first() -> None:
    assert price_path(100.0, 101.0, 97.0, 99.0) == (100.0, 101.0, 97.0, 99.0)
    assert price_path(100.0, 104.0, 99.5, 103.0) == (100.0, 99.5, 104.0, 103.0)
    # tie: high first
    assert price_path(100.0, 102.0, 98.0, 100.0) == (100.0, 102.0, 98.0, 100.0)


def test_buy_sl_and_tp_inside_bar() -> None:
    bar = (100.0, 101.0, 98.0, 99.0)
    assert stop_hit(Side.BUY, 98.5, 105.0, bar) == (DealReason.SL, 98.5)
    assert stop_hit(Side.BUY, 95.0, 100.5, bar) == (DealReason.TP, 100.5)
    assert stop_hit(Side.BUY, 95.0, 105.0, bar) is None
    assert stop_hit(Side.BUY, 0.0, 0.0, bar) is None


def test_touch_exactly_at_level_counts() -> None:
    bar = (100.0, 101.0, 98.0, 99.0)
    assert stop_hit(Side.BUY, 98.0, 0.0, bar) == (DealReason.SL, 98.0)
    assert stop_hit(Side.BUY, 0.0, 101.0, bar) == (DealReason.TP, 101.0)


def test_both_touched_sl_wins_even_if_tp_comes_first_on_the_path() -> None:
    # path: 100 -> 101 (TP at 100.8 first) -> 97 (SL at 98) -> 99 ; still SL
    bar = (100.0, 101.0, 97.0, 99.0)
    assert stop_hit(Side.BUY, 98.0, 100.8, bar) == (DealReason.SL, 98.0)
    assert stop_hit(Side.SELL, 100.9, 97.5, bar) == (DealReason.SL, 100.9)


def test_gap_through_stop_fills_at_open() -> None:
    # BUY with SL 99; the bar opens at 97.5 (gap down) -> fill at 97.5, not 99
    assert stop_hit(Side.BUY, 99.0, 110.0, (97.5, 98.0, 96.0, 97.0)) == (DealReason.SL, 97.5)
    # SELL with SL 101 opening at 102.3 -> 102.3
    assert stop_hit(Side.SELL, 101.0, 90.0, (102.3, 103.0, 102.0, 102.5)) == (DealReason.SL, 102.3)
    # gap through TP also fills at the open (the better price)
    assert stop_hit(Side.BUY, 90.0, 105.0, (106.0, 107.0, 105.5, 106.5)) == (DealReason.TP, 106.0)


def test_sell_uses_ask_path() -> None:
    bar = (100.0, 100.9, 99.5, 100.2)
    # bid high 100.9 never reaches SL 101, but the ask (spread 0.2) does
    assert stop_hit(Side.SELL, 101.0, 0.0, bar) is None
    assert stop_hit(Side.SELL, 101.0, 0.0, bar, spread=0.2) == (DealReason.SL, 101.0)
    # TP 99.6: bid low 99.5 touches it, the ask low 99.7 does not
    assert stop_hit(Side.SELL, 0.0, 99.6, bar) == (DealReason.TP, 99.6)
    assert stop_hit(Side.SELL, 0.0, 99.6, bar, spread=0.2) is None


def test_touch_fraction() -> None:
    bar = (100.0, 101.0, 97.0, 99.0)  # legs 1, 4, 2 -> total 7
    assert touch_fraction(bar, 100.0) == 0.0
    assert touch_fraction(bar, 101.0) == pytest.approx(1 / 7)
    assert touch_fraction(bar, 98.0) == pytest.approx(4 / 7)
    assert touch_fraction(bar, 96.0) is None


def test_synthesise_path_contains_vertices_in_order() -> None:
    bar = (100.0, 101.0, 97.0, 99.0)
    ticks = synthesise_path(bar, 11)
    assert len(ticks) == 11
    assert ticks[0] == 100.0 and ticks[-1] == 99.0
    assert ticks.max() == 101.0 and ticks.min() == 97.0
    assert int(np.argmax(ticks)) < int(np.argmin(ticks))  # high visited before low
    # legs of 1, 4 and 2 share the 7 extra points as 1, 4 and 2 interior points
    assert list(ticks) == [100.0, 100.5, 101.0, 100.2, 99.4, 98.6, 97.8, 97.0, 97.67, 98.33, 99.0]


def test_synthesise_path_minimum_and_flat_bar() -> None:
    assert list(synthesise_path((100.0, 101.0, 99.0, 100.5), 4)) == [100.0, 101.0, 99.0, 100.5]
    flat = synthesise_path((100.0, 100.0, 100.0, 100.0), 6)
    assert list(flat) == [100.0] * 6
    with pytest.raises(ValueError, match="at least 4"):
        synthesise_path((100.0, 101.0, 99.0, 100.5), 3)
