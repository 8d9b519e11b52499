"""Smart Money Concepts on closed bars: swings, fair value gaps, order blocks, BOS/CHoCH, liquidity.

Every event is stamped on the bar where it becomes *known* (decision 3), so row t of
`analyze(bars)` depends only on bars 0..t:

- a swing pivot at bar p is confirmed at bar p + swing_length (its high/low is the extreme of
  bars p - L .. p + L, ties included) and appears there, its level being the pivot's high/low;
- a fair value gap is stamped on its third candle;
- an order block is stamped on the swing-confirmation bar that reveals it (never back-dated to
  the candle it points at); its zone is that candle's high/low; `ob_mitigated` is +1/-1 on the
  first later bar that trades back into the latest bullish/bearish zone (bearish wins a tie);
- BOS/CHoCH sit on the candle whose close breaks the last confirmed swing level;
- buy-/sell-side liquidity is the nearest swing high/low level not yet traded through.

`signal()` turns the latest rows into an `SMCSetup` per analysis-and-models.md §2 with
decision 8: entry at the last close, stop beyond the zone, broker TP at 2 R capped at 4 x ATR,
and entries with less than 2 R refused. A zone that a close has since gone through is void.

The sequential rules (swings, structure, order blocks and their mitigation, liquidity) run in one
numba loop over numpy arrays, ATR in another; fair value gaps are vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from trading.domain import Side
from trading.smc_kernels import atr_series as _atr_series
from trading.smc_kernels import sequential_rules as _sequential_rules

ATR_PERIOD = 14
REQUIRED_COLUMNS = ("time", "open", "high", "low", "close")

EVENT_COLUMNS = ("swing_high", "swing_low", "fvg", "ob", "ob_mitigated", "bos", "choch", "trend")
LEVEL_COLUMNS = (
    "swing_high_level",
    "swing_low_level",
    "fvg_top",
    "fvg_bottom",
    "ob_top",
    "ob_bottom",
    "buyside_liquidity",
    "sellside_liquidity",
)
# Output column order of `analyze`.
SMC_COLUMNS = (
    "time",
    "close",
    "atr",
    "swing_high",
    "swing_high_level",
    "swing_low",
    "swing_low_level",
    "fvg",
    "fvg_top",
    "fvg_bottom",
    "ob",
    "ob_top",
    "ob_bottom",
    "ob_mitigated",
    "bos",
    "choch",
    "trend",
    "buyside_liquidity",
    "sellside_liquidity",
)


# --------------------------------------------------------------------------- vectorised rules


def fair_value_gaps(
    high: np.ndarray, low: np.ndarray, min_gap: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-candle imbalances stamped on the third candle: (signal, top, bottom) arrays.

    Bullish when high[t-2] < low[t] (zone high[t-2]..low[t]); bearish when low[t-2] > high[t]
    (zone high[t]..low[t-2]). A gap must be strictly positive and at least `min_gap` (price units).
    """
    n = high.shape[0]
    sig = np.zeros(n, np.int8)
    top = np.full(n, np.nan)
    bottom = np.full(n, np.nan)
    if n < 3:
        return sig, top, bottom
    h2, l2, h0, l0 = high[:-2], low[:-2], high[2:], low[2:]
    bull_gap = l0 - h2
    bear_gap = l2 - h0
    bull = (bull_gap > 0) & (bull_gap >= min_gap)
    bear = (bear_gap > 0) & (bear_gap >= min_gap)
    sig[2:] = bull.astype(np.int8) - bear.astype(np.int8)
    top[2:] = np.where(bull, l0, np.where(bear, l2, np.nan))
    bottom[2:] = np.where(bull, h2, np.where(bear, h0, np.nan))
    return sig, top, bottom


def _float_column(name: str, values: np.ndarray) -> pl.Series:
    return pl.Series(name, values, pl.Float64, nan_to_null=True)


def analyze(
    bars: pl.DataFrame,
    swing_length: int = 5,
    fvg_min_gap: float = 0.0,
    ob_lookback: int = 10,
) -> pl.DataFrame:
    """Per-bar SMC events for a bar frame (BAR_SCHEMA; only time/open/high/low/close are read).

    `ob_lookback`: an order block is looked for among the ob_lookback - 1 candles before the
    confirming bar (the original's window). `fvg_min_gap` is in price units (USD for XAUUSD).

    Returns one row per bar, same order, columns `SMC_COLUMNS`: event flags are Int8
    (swing_high/swing_low 1/0; fvg, ob, ob_mitigated, bos, choch, trend +1/-1/0) and levels are
    Float64, null where there is no event. `close` and `atr` (ATR(14), TA-Lib/Wilder) are carried
    so that `signal(analysis)` needs nothing else.
    """
    missing = [col for col in REQUIRED_COLUMNS if col not in bars.columns]
    if missing:
        raise ValueError(f"smc.analyze: bar frame is missing column(s): {', '.join(missing)}")
    if swing_length < 1:
        raise ValueError(f"smc.analyze: swing_length must be >= 1, got {swing_length}")
    if ob_lookback < 2:
        raise ValueError(f"smc.analyze: ob_lookback must be >= 2, got {ob_lookback}")
    if fvg_min_gap < 0:
        raise ValueError(f"smc.analyze: fvg_min_gap must be >= 0, got {fvg_min_gap}")

    o, h, lo, c = (
        bars[col].to_numpy().astype(np.float64, copy=False) for col in ("open", "high", "low", "close")
    )
    sh, sh_lvl, sl, sl_lvl, ob, ob_top, ob_bot, ob_mit, bos, choch, trend, bsl, ssl = _sequential_rules(
        o, h, lo, c, swing_length, ob_lookback
    )
    atr = _atr_series(h, lo, c, ATR_PERIOD)
    fvg, fvg_top, fvg_bot = fair_value_gaps(h, lo, fvg_min_gap)

    ints = {
        "swing_high": sh,
        "swing_low": sl,
        "fvg": fvg,
        "ob": ob,
        "ob_mitigated": ob_mit,
        "bos": bos,
        "choch": choch,
        "trend": trend,
    }
    floats = {
        "close": c,
        "atr": atr,
        "swing_high_level": sh_lvl,
        "swing_low_level": sl_lvl,
        "fvg_top": fvg_top,
        "fvg_bottom": fvg_bot,
        "ob_top": ob_top,
        "ob_bottom": ob_bot,
        "buyside_liquidity": bsl,
        "sellside_liquidity": ssl,
    }
    columns: list[pl.Series] = [bars["time"]]
    for name in SMC_COLUMNS[1:]:
        if name in ints:
            columns.append(pl.Series(name, ints[name], pl.Int8))
        else:
            columns.append(_float_column(name, floats[name]))
    return pl.DataFrame(columns)


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True, slots=True)
class SMCSetup:
    """A trade idea from the latest bar's SMC picture; prices rounded to 0.01."""

    side: Side
    entry: float
    stop_loss: float
    take_profit: float
    risk_reward: float
    confidence: float
    reason: str
    kind: str  # "FVG" | "OB": the zone the stop hides behind
    zone_top: float
    zone_bottom: float
    atr: float

    @property
    def risk(self) -> float:
        return abs(self.entry - self.stop_loss)


def wilder_atr(bars: pl.DataFrame, period: int = ATR_PERIOD) -> float | None:
    """ATR(period) of the last bar (TA-Lib convention), or None when there are too few bars."""
    if bars.height <= period:
        return None
    h, lo, c = (bars[col].to_numpy().astype(np.float64, copy=False) for col in ("high", "low", "close"))
    return float(_atr_series(h, lo, c, period)[-1])


def _round(x: float) -> float:
    return round(x + 0.0, 2)


SIGNAL_COLUMNS = (
    "close",
    "fvg",
    "fvg_top",
    "fvg_bottom",
    "ob",
    "ob_top",
    "ob_bottom",
    "bos",
    "choch",
    "trend",
)


def explain_signal(
    analysis: pl.DataFrame,
    bars: pl.DataFrame | None = None,
    atr: float | None = None,
    min_rr: float = 2.0,
    tp_atr_cap: float = 4.0,
    *,
    recent: int = 10,
    min_sl_atr: float = 1.5,
    sl_buffer_atr: float = 0.1,
) -> tuple[SMCSetup | None, str]:
    """`signal` with the reason when there is no setup (for the SMC gate's verdict)."""
    missing = [col for col in SIGNAL_COLUMNS if col not in analysis.columns and col != "close"]
    if missing:
        raise ValueError(f"smc.signal: analysis frame is missing column(s): {', '.join(missing)}")
    if recent < 1 or min_rr <= 0 or tp_atr_cap <= 0 or min_sl_atr < 0 or sl_buffer_atr < 0:
        raise ValueError(
            "smc.signal: need recent >= 1, min_rr > 0, tp_atr_cap > 0, min_sl_atr >= 0, sl_buffer_atr >= 0"
        )
    if analysis.height < recent:
        return None, f"need at least {recent} analysed bars, have {analysis.height}"
    if bars is not None and bars.height != analysis.height:
        raise ValueError(
            f"smc.signal: bars ({bars.height} rows) do not match the analysis ({analysis.height} rows)"
        )

    if bars is not None:
        closes = bars["close"].tail(recent).to_numpy()
    elif "close" in analysis.columns:
        closes = analysis["close"].tail(recent).to_numpy()
    else:
        raise ValueError("smc.signal: no close price: pass bars or an analysis with a 'close' column")
    if atr is None:
        if bars is not None:
            atr = wilder_atr(bars)
        elif "atr" in analysis.columns:
            atr = analysis["atr"][-1]
    if atr is None or not np.isfinite(atr) or atr <= 0:
        return None, "no ATR yet (too few bars)"
    atr = float(atr)

    window = analysis.tail(max(recent, 20))
    cols = {name: window[name].to_numpy() for name in SIGNAL_COLUMNS[1:]}
    return _decide(cols, closes, float(atr), min_rr, tp_atr_cap, recent, min_sl_atr, sl_buffer_atr)


_HIT_FLAGS = ("bos", "choch", "fvg", "ob")  # bits 0-3 of a hit code; bit 4: two BOS in the last 20 bars
_BOS_COUNT_BARS = 20


def signal_columns(analysis: pl.DataFrame, recent: int = 10) -> dict[str, np.ndarray]:
    """The analysis columns `signal_at` reads, as numpy arrays (convert once, read many rows), with
    each row's structure hits over the last `recent` bars counted once for all rows (`_hit_codes`)."""
    columns = {name: analysis[name].to_numpy() for name in (*SIGNAL_COLUMNS, "atr")}
    columns[_hits_key(recent)] = _hit_codes(columns, recent)
    return columns


def signal_columns_of(
    columns: dict[str, np.ndarray], recent: int = 10, last: int = 2
) -> dict[str, np.ndarray]:
    """`signal_columns` from numpy columns already at hand (`SIGNAL_COLUMNS` and `atr`), for `signal_at`
    on their `last` rows only (a live loop's newest bar and the one before, with 20 rows before them):
    the hit codes are counted for those rows alone, as `_hit_codes` counts them."""
    n = columns["close"].size
    codes = np.zeros((n, 2), dtype=np.int64)
    for i in range(max(0, n - last), n):
        for j, s in enumerate((1, -1)):
            code = 0
            for bit, flag in enumerate(_HIT_FLAGS):
                code |= int(bool((columns[flag][max(0, i + 1 - recent) : i + 1] == s).any())) << bit
            bos = int((columns["bos"][max(0, i + 1 - _BOS_COUNT_BARS) : i + 1] == s).sum())
            codes[i, j] = code | (int(bos >= 2) << 4)
    return dict(columns) | {_hits_key(recent): codes}


def _hits_key(recent: int) -> str:
    return f"_hits_{recent}"


def _hit_codes(columns: dict[str, np.ndarray], recent: int) -> np.ndarray:
    """(n, 2) per row and side (BUY, SELL): which of bos/choch/fvg/ob hit the side in the last `recent`
    rows (bits 0-3) and whether the last 20 rows hold two BOS of the side (bit 4)."""
    out = np.zeros((columns["close"].size, 2), dtype=np.int64)
    for j, s in enumerate((1, -1)):
        for bit, flag in enumerate(_HIT_FLAGS):
            out[:, j] |= (_rolling_count(columns[flag] == s, recent) > 0).astype(np.int64) << bit
        out[:, j] |= (_rolling_count(columns["bos"] == s, _BOS_COUNT_BARS) >= 2).astype(np.int64) << 4
    return out


def _rolling_count(hit: np.ndarray, bars: int) -> np.ndarray:
    """Per row i, how many of the rows max(0, i - bars + 1)..i hit (exact integer counts)."""
    total = np.concatenate([[0], np.cumsum(hit, dtype=np.int64)])
    start = np.maximum(np.arange(hit.size) + 1 - bars, 0)
    return np.asarray(total[1:] - total[start])


def signal_at(
    columns: dict[str, np.ndarray],
    i: int,
    min_rr: float = 2.0,
    tp_atr_cap: float = 4.0,
    *,
    recent: int = 10,
    min_sl_atr: float = 1.5,
    sl_buffer_atr: float = 0.1,
) -> SMCSetup | None:
    """`signal` for row i of a whole analysed frame: the same rules on the rows up to i only."""
    if i + 1 < recent:
        return None
    atr = columns["atr"][i]
    if not np.isfinite(atr) or atr <= 0:
        return None
    start = max(0, i + 1 - max(recent, 20))
    cols = {name: columns[name][start : i + 1] for name in SIGNAL_COLUMNS[1:]}
    closes = columns["close"][i + 1 - recent : i + 1]
    codes = columns.get(_hits_key(recent))  # counted for this window by signal_columns
    hits = None if codes is None else (int(codes[i, 0]), int(codes[i, 1]))
    return _decide(cols, closes, float(atr), min_rr, tp_atr_cap, recent, min_sl_atr, sl_buffer_atr, hits)[0]


def _decide(
    cols: dict[str, np.ndarray],
    closes: np.ndarray,
    atr: float,
    min_rr: float,
    tp_atr_cap: float,
    recent: int,
    min_sl_atr: float,
    sl_buffer_atr: float,
    hits: tuple[int, int] | None = None,
) -> tuple[SMCSetup | None, str]:
    """`hits`: the BUY and SELL hit codes of this row (`_hit_codes`) when already counted; else the
    hits are read from `cols`."""
    entry = float(closes[-1])
    last = {name: values[-recent:] for name, values in cols.items()}
    ms = int(cols["trend"][-1])

    refusals: list[str] = []
    for side in (Side.BUY, Side.SELL):  # BUY first: it wins when both sides qualify
        s = side.sign
        if hits is None:
            bos_hit = bool((last["bos"] == s).any())
            choch_hit = bool((last["choch"] == s).any())
            has_fvg = bool((last["fvg"] == s).any())
            has_ob = bool((last["ob"] == s).any())
        else:
            code = hits[0 if s == 1 else 1]
            bos_hit, choch_hit, has_fvg, has_ob = (
                bool(code & 1),
                bool(code & 2),
                bool(code & 4),
                bool(code & 8),
            )
        if not ((ms == s or bos_hit or choch_hit) and (has_fvg or has_ob)):
            continue
        zone = _pick_zone(last, closes, side)
        if zone is None:
            refusals.append(f"{side.value}: price has closed through every recent zone")
            continue
        kind, top, bottom = zone
        setup, why = _build_setup(
            side, entry, atr, kind, top, bottom, min_rr, tp_atr_cap, min_sl_atr, sl_buffer_atr
        )
        if setup is None:
            refusals.append(why)
            continue
        confidence = 0.40
        confidence += 0.15 if ms == s else 0.0
        confidence += 0.12 if (bos_hit or choch_hit) else 0.0
        confidence += 0.08 if has_fvg else 0.0
        confidence += 0.10 if has_ob else 0.0
        two_bos = bool(code & 16) if hits is not None else int((cols["bos"][-20:] == s).sum()) >= 2
        confidence += 0.10 if two_bos else 0.0
        word = "up" if side is Side.BUY else "down"
        head = _latest_break(last, s, word) if (bos_hit or choch_hit) else f"trend {word}"
        bias = "bullish" if side is Side.BUY else "bearish"
        reason = f"{head} + {bias} {kind} {bottom:.2f}-{top:.2f}"
        return replace(setup, confidence=round(min(confidence, 0.85), 2), reason=reason), reason
    return None, "; ".join(refusals) or "no structure + zone confluence on the recent bars"


def signal(
    analysis: pl.DataFrame,
    bars: pl.DataFrame | None = None,
    atr: float | None = None,
    min_rr: float = 2.0,
    tp_atr_cap: float = 4.0,
    *,
    recent: int = 10,
    min_sl_atr: float = 1.5,
    sl_buffer_atr: float = 0.1,
) -> SMCSetup | None:
    """The SMC setup of the latest bar, or None.

    BUY when structure is up (trend up or a bullish BOS/CHoCH in the last 10 bars) and a bullish
    FVG or order block formed in those bars; SELL mirrors (BUY wins when both qualify). Entry is
    the last close; the stop sits `sl_buffer_atr` x ATR beyond the zone (most recent FVG preferred,
    else order block) and at least `min_sl_atr` x ATR from entry; TP = entry + min_rr x risk,
    capped at tp_atr_cap x ATR. A setup whose capped reward is below min_rr x risk is refused.
    ATR: `atr` if given, else ATR(14) of `bars`, else the analysis' `atr` column.
    """
    setup, _ = explain_signal(
        analysis,
        bars,
        atr,
        min_rr,
        tp_atr_cap,
        recent=recent,
        min_sl_atr=min_sl_atr,
        sl_buffer_atr=sl_buffer_atr,
    )
    return setup


def _pick_zone(
    last: dict[str, np.ndarray], closes: np.ndarray, side: Side
) -> tuple[str, float, float] | None:
    """Most recent same-side FVG, else order block, that no close since it formed has gone through."""
    s = side.sign
    for kind, flag, top_col, bottom_col in (
        ("FVG", "fvg", "fvg_top", "fvg_bottom"),
        ("OB", "ob", "ob_top", "ob_bottom"),
    ):
        for i in np.flatnonzero(last[flag] == s)[::-1]:
            top, bottom = float(last[top_col][i]), float(last[bottom_col][i])
            since = closes[i:]
            if (side is Side.BUY and since.min() > bottom) or (side is Side.SELL and since.max() < top):
                return kind, top, bottom
    return None


def _latest_break(last: dict[str, np.ndarray], s: int, word: str) -> str:
    bos_at = np.flatnonzero(last["bos"] == s)
    choch_at = np.flatnonzero(last["choch"] == s)
    latest_bos = bos_at[-1] if bos_at.size else -1
    latest_choch = choch_at[-1] if choch_at.size else -1
    return f"BOS {word}" if latest_bos >= latest_choch else f"CHoCH {word}"


def _build_setup(
    side: Side,
    entry: float,
    atr: float,
    kind: str,
    top: float,
    bottom: float,
    min_rr: float,
    tp_atr_cap: float,
    min_sl_atr: float,
    sl_buffer_atr: float,
) -> tuple[SMCSetup | None, str]:
    s = side.sign
    beyond_zone = (bottom - sl_buffer_atr * atr) if side is Side.BUY else (top + sl_buffer_atr * atr)
    risk = max(s * (entry - beyond_zone), min_sl_atr * atr)
    reward = min(min_rr * risk, tp_atr_cap * atr)
    if reward < min_rr * risk - 1e-9:
        return None, (
            f"{side.value}: stop {risk:.2f} away needs TP {min_rr:g}R = {min_rr * risk:.2f}, "
            f"above the {tp_atr_cap:g} x ATR cap {tp_atr_cap * atr:.2f}"
        )
    entry_r = _round(entry)
    stop = _round(entry - s * risk)
    target = _round(entry + s * reward)
    rr = round(abs(target - entry_r) / abs(entry_r - stop), 2)
    setup = SMCSetup(
        side=side,
        entry=entry_r,
        stop_loss=stop,
        take_profit=target,
        risk_reward=rr,
        confidence=0.0,
        reason="",
        kind=kind,
        zone_top=_round(top),
        zone_bottom=_round(bottom),
        atr=round(atr, 4),
    )
    return setup, "ok"
