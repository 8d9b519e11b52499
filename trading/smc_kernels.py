"""The sequential rules of `trading.smc` as numba loops over numpy arrays: swings, structure (BOS/CHoCH,
trend), order blocks and their mitigation, liquidity levels (`sequential_rules`); and Wilder's ATR
(`atr_series`). `trading.smc.analyze` documents what each column means and when it is stamped."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def sequential_rules(o, h, lo, c, swing_length, ob_lookback):  # pragma: no cover - numba
    n = c.shape[0]
    L = swing_length
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
    # untaken swing levels; each stack is monotone, so its top is the nearest level
    high_stack = np.empty(n)
    low_stack = np.empty(n)
    n_hs = 0
    n_ls = 0

    last_sh = np.nan
    last_sl = np.nan
    state = 0
    bull_zone_top = np.nan  # latest bullish order block not yet revisited
    bear_zone_bot = np.nan
    for t in range(n):
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
                sh[t] = 1
                sh_lvl[t] = h[p]
            if is_sl:
                sl[t] = 1
                sl_lvl[t] = lo[p]

        # order-block mitigation: price comes back into the latest zone stamped before this bar
        if not np.isnan(bull_zone_top) and lo[t] <= bull_zone_top:
            ob_mit[t] = 1
            bull_zone_top = np.nan
        if not np.isnan(bear_zone_bot) and h[t] >= bear_zone_bot:
            ob_mit[t] = -1
            bear_zone_bot = np.nan

        # order blocks, stamped on the confirmation bar: the most recent opposite candle whose
        # range the confirming close has left behind
        first = max(0, t - ob_lookback + 1)
        if is_sl:
            for j in range(t - 1, first - 1, -1):
                if c[j] < o[j] and c[t] > h[j]:
                    ob[t] = 1
                    ob_top[t] = h[j]
                    ob_bot[t] = lo[j]
                    bull_zone_top = h[j]
                    break
        if is_sh:
            for j in range(t - 1, first - 1, -1):
                if c[j] > o[j] and c[t] < lo[j]:
                    ob[t] = -1
                    ob_top[t] = h[j]
                    ob_bot[t] = lo[j]
                    bear_zone_bot = lo[j]
                    break

        # liquidity: a level is taken once a wick trades through it
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
        if n_hs > 0:
            bsl[t] = high_stack[n_hs - 1]
        if n_ls > 0:
            ssl[t] = low_stack[n_ls - 1]

        # market structure on closes; the first break out of neutral only sets the trend
        if is_sh:
            last_sh = h[t - L]
        if is_sl:
            last_sl = lo[t - L]
        if not np.isnan(last_sh) and c[t] > last_sh:
            if state == 1:
                bos[t] = 1
            elif state == -1:
                choch[t] = 1
            state = 1
            last_sh = np.nan
        if not np.isnan(last_sl) and c[t] < last_sl:
            if state == -1:
                bos[t] = -1
            elif state == 1:
                choch[t] = -1
            state = -1
            last_sl = np.nan
        trend[t] = state

    return sh, sh_lvl, sl, sl_lvl, ob, ob_top, ob_bot, ob_mit, bos, choch, trend, bsl, ssl


@numba.njit(cache=True)
def atr_series(h, lo, c, period):  # pragma: no cover - numba
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
