"""`_pick_zone` (the SMC rule's zone behind the stop): the most recent same-side FVG, else order block, that
no close since it formed has gone through; a NaN close voids every zone it follows. Checked against the
rule written out plainly, on random windows with NaN closes and NaN zone edges."""

from __future__ import annotations

import math
import random

from trading.smc_signal import _ZONES, _pick_zone


def _plain(cols: dict[str, list[float]], first: int, end: int, closes: list[float], s: int) -> object:
    for kind, flag, top_col, bottom_col in _ZONES:
        for k in range(end - 1, first - 1, -1):
            if cols[flag][k] != s:
                continue
            top, bottom = cols[top_col][k], cols[bottom_col][k]
            since = closes[k - first :]
            if all((c > bottom) if s == 1 else (c < top) for c in since):
                return kind, top, bottom
    return None


def _window(rng: random.Random, n: int) -> tuple[dict[str, list[float]], list[float]]:
    def price() -> float:
        return math.nan if rng.random() < 0.05 else round(rng.uniform(1990.0, 2010.0), 2)

    cols: dict[str, list[float]] = {}
    for _, flag, top_col, bottom_col in _ZONES:
        cols[flag] = [float(rng.choice((-1, 0, 0, 1))) for _ in range(n)]
        bottoms = [price() for _ in range(n)]
        cols[bottom_col] = bottoms
        cols[top_col] = [b + rng.uniform(0.5, 5.0) for b in bottoms]
    return cols, [price() for _ in range(n)]


def test_pick_zone_is_the_plain_rule_with_nan_closes_and_edges() -> None:
    rng = random.Random(4)
    found = 0
    for _ in range(3_000):
        cols, closes = _window(rng, 20)
        first, end = 10, 20
        for s in (1, -1):
            zone = _pick_zone(cols, first, end, closes[first:end], s)
            expected = _plain(cols, first, end, closes[first:end], s)
            assert zone == expected
            found += zone is not None
    assert found > 500  # the windows do hold zones, not only refusals


def test_a_nan_close_after_a_zone_voids_it() -> None:
    n = 10
    cols = {name: [0.0] * n for _, *names in _ZONES for name in names}
    cols["fvg"][3], cols["fvg_top"][3], cols["fvg_bottom"][3] = 1.0, 2001.0, 1999.0
    closes = [2005.0] * n
    assert _pick_zone(cols, 0, n, closes, 1) == ("FVG", 2001.0, 1999.0)
    closes[7] = math.nan
    assert _pick_zone(cols, 0, n, closes, 1) is None
    closes[7], closes[2] = 2005.0, math.nan  # before the zone formed: not a close since
    assert _pick_zone(cols, 0, n, closes, 1) == ("FVG", 2001.0, 1999.0)
