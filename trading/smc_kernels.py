"""The sequential rules of `trading.smc` as numba loops over numpy arrays: swings, structure (BOS/CHoCH,
trend), order blocks and their mitigation, liquidity levels (`sequential_rules`); and Wilder's ATR
(`atr_series`). `trading.smc.analyze` documents what each column means and when it is stamped.

One bar of the rules is `smc_step`: `sequential_rules` runs it for every row, and a live loop runs it
for the appended bar alone (`trading.smc_step`), with the same state, so both give the same row."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

Array = np.ndarray[Any, Any]

# the float state of `smc_step`: last unbroken swing high / low, latest unvisited bullish / bearish zone
F_LAST_SH, F_LAST_SL, F_BULL_TOP, F_BEAR_BOT = 0, 1, 2, 3
# the int state: market structure (+1/-1/0), depth of the untaken high / low liquidity stacks
I_TREND, I_HIGHS, I_LOWS = 0, 1, 2


def new_state() -> tuple[Array, Array]:
    """The rules' state before the first bar."""
    return np.full(4, np.nan), np.zeros(3, np.int64)


@numba.njit(cache=True)
def smc_step(  # pragma: no cover - numba
    o: Array,
    h: Array,
    lo: Array,
    c: Array,
    t: int,
    swing_length: int,
    ob_lookback: int,
    fs: Array,
    ist: Array,
    high_stack: Array,
    low_stack: Array,
) -> tuple[Any, ...]:
    """Row t's events (rows before t only read for the swing and order-block windows); updates the
    state `fs` / `ist` and the liquidity stacks (each needs room for one more level).

    Returns (swing_high, swing_high_level, swing_low, swing_low_level, ob, ob_top, ob_bottom,
    ob_mitigated, bos, choch, trend, buyside_liquidity, sellside_liquidity)."""
    L = swing_length
    sh = 0
    sl = 0
    sh_lvl = np.nan
    sl_lvl = np.nan
    ob = 0
    ob_top = np.nan
    ob_bot = np.nan
    ob_mit = 0
    bos = 0
    choch = 0
    # swing pivot at p = t - L, confirmed now: extreme of bars p - L .. t
    is_sh = False
    is_sl = False
    if t >= 2 * L:
        p = t - L
        is_sh = True
        is_sl = True
        for k in range(t - 2 * L, t + 1):
            if h[k] > h[p]:
                is_sh = False
            if lo[k] < lo[p]:
                is_sl = False
        if is_sh:
            sh = 1
            sh_lvl = h[p]
        if is_sl:
            sl = 1
            sl_lvl = lo[p]

    # order-block mitigation: price comes back into the latest zone stamped before this bar
    if not np.isnan(fs[F_BULL_TOP]) and lo[t] <= fs[F_BULL_TOP]:
        ob_mit = 1
        fs[F_BULL_TOP] = np.nan
    if not np.isnan(fs[F_BEAR_BOT]) and h[t] >= fs[F_BEAR_BOT]:
        ob_mit = -1
        fs[F_BEAR_BOT] = np.nan

    # order blocks, stamped on the confirmation bar: the most recent opposite candle whose
    # range the confirming close has left behind
    first = max(0, t - ob_lookback + 1)
    if is_sl:
        for j in range(t - 1, first - 1, -1):
            if c[j] < o[j] and c[t] > h[j]:
                ob = 1
                ob_top = h[j]
                ob_bot = lo[j]
                fs[F_BULL_TOP] = h[j]
                break
    if is_sh:
        for j in range(t - 1, first - 1, -1):
            if c[j] > o[j] and c[t] < lo[j]:
                ob = -1
                ob_top = h[j]
                ob_bot = lo[j]
                fs[F_BEAR_BOT] = lo[j]
                break

    # liquidity: a level is taken once a wick trades through it; each stack is monotone, so its top
    # is the nearest level
    n_hs = ist[I_HIGHS]
    n_ls = ist[I_LOWS]
    while n_hs > 0 and high_stack[n_hs - 1] < h[t]:
        n_hs -= 1
    while n_ls > 0 and low_stack[n_ls - 1] > lo[t]:
        n_ls -= 1
    if is_sh:
        high_stack[n_hs] = h[t - L]
        n_hs += 1
    if is_sl:
        low_stack[n_ls] = lo[t - L]
        n_ls += 1
    bsl = high_stack[n_hs - 1] if n_hs > 0 else np.nan
    ssl = low_stack[n_ls - 1] if n_ls > 0 else np.nan
    ist[I_HIGHS] = n_hs
    ist[I_LOWS] = n_ls

    # market structure on closes; the first break out of neutral only sets the trend
    if is_sh:
        fs[F_LAST_SH] = h[t - L]
    if is_sl:
        fs[F_LAST_SL] = lo[t - L]
    state = ist[I_TREND]
    if not np.isnan(fs[F_LAST_SH]) and c[t] > fs[F_LAST_SH]:
        if state == 1:
            bos = 1
        elif state == -1:
            choch = 1
        state = 1
        fs[F_LAST_SH] = np.nan
    if not np.isnan(fs[F_LAST_SL]) and c[t] < fs[F_LAST_SL]:
        if state == -1:
            bos = -1
        elif state == 1:
            choch = -1
        state = -1
        fs[F_LAST_SL] = np.nan
    ist[I_TREND] = state
    return sh, sh_lvl, sl, sl_lvl, ob, ob_top, ob_bot, ob_mit, bos, choch, state, bsl, ssl


@numba.njit(cache=True)
def sequential_rules_state(  # pragma: no cover - numba
    o: Array,
    h: Array,
    lo: Array,
    c: Array,
    swing_length: int,
    ob_lookback: int,
    fs: Array,
    ist: Array,
    high_stack: Array,
    low_stack: Array,
) -> tuple[Array, ...]:
    """`smc_step` over every row from the given state (the stacks need room for n more levels)."""
    n = c.shape[0]
    sh = np.zeros(n, np.int8)
    sl = np.zeros(n, np.int8)
    sh_lvl = np.full(n, np.nan)
    sl_lvl = np.full(n, np.nan)
    ob = np.zeros(n, np.int8)
    ob_top = np.full(n, np.nan)
    ob_bot = np.full(n, np.nan)
    ob_mit = np.zeros(n, np.int8)
    bos = np.zeros(n, np.int8)
    choch = np.zeros(n, np.int8)
    trend = np.zeros(n, np.int8)
    bsl = np.full(n, np.nan)
    ssl = np.full(n, np.nan)
    for t in range(n):
        r = smc_step(o, h, lo, c, t, swing_length, ob_lookback, fs, ist, high_stack, low_stack)
        sh[t], sh_lvl[t], sl[t], sl_lvl[t] = r[0], r[1], r[2], r[3]
        ob[t], ob_top[t], ob_bot[t], ob_mit[t] = r[4], r[5], r[6], r[7]
        bos[t], choch[t], trend[t], bsl[t], ssl[t] = r[8], r[9], r[10], r[11], r[12]
    return sh, sh_lvl, sl, sl_lvl, ob, ob_top, ob_bot, ob_mit, bos, choch, trend, bsl, ssl


def sequential_rules(
    o: Array, h: Array, lo: Array, c: Array, swing_length: int, ob_lookback: int
) -> tuple[Array, ...]:
    """The rules over every row from the start (see `trading.smc.analyze`)."""
    fs, ist = new_state()
    n = c.shape[0]
    return sequential_rules_state(
        o, h, lo, c, swing_length, ob_lookback, fs, ist, np.empty(n + 1), np.empty(n + 1)
    )


@numba.njit(cache=True)
def atr_series(h: Array, lo: Array, c: Array, period: int) -> Array:  # pragma: no cover - numba
    """ATR, TA-Lib convention: TR needs the previous close; SMA seed at bar `period`, then Wilder."""
    n = c.shape[0]
    atr = np.full(n, np.nan)
    tr_sum = 0.0
    for t in range(1, n):
        tr = max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))
        if t < period:
            tr_sum += tr
        elif t == period:
            atr[t] = (tr_sum + tr) / period
        else:
            atr[t] = (atr[t - 1] * (period - 1) + tr) / period
    return atr


def atr_step(prev_atr: float, high: float, low: float, prev_close: float, period: int) -> float:
    """`atr_series`'s next value after `prev_atr` (past its seed), operation for operation."""
    tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
    return (prev_atr * (period - 1) + tr) / period
