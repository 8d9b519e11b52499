"""The SMC setup rule of one analysed row (analysis-and-models.md §2 with decision 8), for `trading.smc`.

BUY when structure is up (trend up or a bullish BOS/CHoCH in the last `recent` rows) and a bullish FVG
or order block formed in those rows; SELL mirrors (BUY wins when both qualify). Entry at the last
close, the stop beyond the zone, TP at 2 R capped at 4 x ATR; entries with less than 2 R are refused,
and a zone that a close has since gone through is void.

A row reads at most its last 20 rows, element by element: the rule runs on Python lists (a numpy
scalar costs several times a list item, a numpy call on ten elements a microsecond), which
`SignalColumns` converts from the frame's numpy columns a chunk of rows at a time. The backtest's
frame, the models' training and the live step all read their setups through `signal_at`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from trading.domain import Side

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
_READ = (*SIGNAL_COLUMNS, "atr")  # what `signal_at` reads of a row
_HIT_FLAGS = ("bos", "choch", "fvg", "ob")  # bits 0-3 of a hit code; bit 4: two BOS in the last 20 bars
_BOS, _CHOCH, _FVG, _OB = (1 << bit for bit in range(len(_HIT_FLAGS)))  # a hit code's bits, by flag
_TWO_BOS_BIT = len(_HIT_FLAGS)
_TWO_BOS = 1 << _TWO_BOS_BIT
_BOS_COUNT_BARS = 20

# the setup rule's numbers (`decide`): the defaults of every entry to it (`signal_at`, and `smc.signal`
# and `smc.explain_signal`), so the live, backtest and research paths cannot drift apart
MIN_RR = 2.0  # reward at least this many times the risk
TP_ATR_CAP = 4.0  # the take-profit at most this many ATR from entry
RECENT_BARS = 10  # the bars a structure break and a zone are looked for in
MIN_SL_ATR = 1.5  # the stop at least this many ATR from entry
SL_BUFFER_ATR = 0.1  # the stop this many ATR beyond the zone

_ZONES = (("FVG", "fvg", "fvg_top", "fvg_bottom"), ("OB", "ob", "ob_top", "ob_bottom"))
_SIDES = ((Side.BUY, 1), (Side.SELL, -1))  # with their signs; BUY first: it wins when both qualify
_CHUNK = 4096  # rows converted to lists at a time
_LEAD = max(_BOS_COUNT_BARS, 10)  # rows before a chunk that its first rows read (at the default `recent`)

Column = Sequence[float]  # a column's rows, as a list (ints read as floats compare the same)


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


@dataclass(frozen=True, slots=True)
class _Lists:
    """Rows `start`..`start + len - 1` of `SignalColumns` as Python lists."""

    start: int
    end: int
    columns: dict[str, list[float]]
    hits: tuple[list[int], list[int]] | None  # BUY and SELL hit codes


class SignalColumns:
    """What `signal_at` reads of an analysed frame: `SIGNAL_COLUMNS` and `atr` as numpy columns, and each
    row's BUY/SELL hit codes counted for `recent` once for all rows (`hits`; None: counted from the rows).
    The rows are read as Python lists, converted a chunk at a time (one chunk kept, so a long frame's
    lists do not grow with its length)."""

    __slots__ = ("_lists", "arrays", "hits", "recent")

    def __init__(self, arrays: dict[str, np.ndarray], recent: int, hits: np.ndarray | None) -> None:
        self.arrays = arrays
        self.recent = recent
        self.hits = hits
        self._lists: _Lists | None = None

    def __len__(self) -> int:
        return int(self.arrays["close"].size)

    def without_hits(self) -> SignalColumns:
        """The same columns with the hit codes left to be counted from the rows."""
        return SignalColumns(self.arrays, self.recent, None)

    def lists(self, first: int, last: int) -> _Lists:
        """The lists holding rows `first`..`last`."""
        held = self._lists
        if held is None or first < held.start or last >= held.end:
            lo = last - last % _CHUNK
            start = max(0, min(first, lo - _LEAD))
            end = min(len(self), lo + _CHUNK)
            hits = self.hits
            held = self._lists = _Lists(
                start,
                end,
                {k: self.arrays[k][start:end].tolist() for k in _READ},
                None if hits is None else (hits[start:end, 0].tolist(), hits[start:end, 1].tolist()),
            )
        return held


def signal_columns(analysis: pl.DataFrame, recent: int = RECENT_BARS) -> SignalColumns:
    """The analysis columns `signal_at` reads (convert once, read many rows), with each row's structure
    hits over the last `recent` bars counted once for all rows (`_hit_codes`)."""
    arrays = {name: analysis[name].to_numpy() for name in _READ}
    return SignalColumns(arrays, recent, _hit_codes(arrays, recent))


def signal_columns_of(
    columns: dict[str, np.ndarray], recent: int = RECENT_BARS, last: int = 2
) -> SignalColumns:
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
            codes[i, j] = code | (int(bos >= 2) << _TWO_BOS_BIT)
    return SignalColumns(dict(columns), recent, codes)


def _hit_codes(columns: dict[str, np.ndarray], recent: int) -> np.ndarray:
    """(n, 2) per row and side (BUY, SELL): which of bos/choch/fvg/ob hit the side in the last `recent`
    rows (bits 0-3) and whether the last 20 rows hold two BOS of the side (bit 4)."""
    out = np.zeros((columns["close"].size, 2), dtype=np.int64)
    for j, s in enumerate((1, -1)):
        for bit, flag in enumerate(_HIT_FLAGS):
            out[:, j] |= (_rolling_count(columns[flag] == s, recent) > 0).astype(np.int64) << bit
        two_bos = _rolling_count(columns["bos"] == s, _BOS_COUNT_BARS) >= 2
        out[:, j] |= two_bos.astype(np.int64) << _TWO_BOS_BIT
    return out


def _rolling_count(hit: np.ndarray, bars: int) -> np.ndarray:
    """Per row i, how many of the rows max(0, i - bars + 1)..i hit (exact integer counts)."""
    total = np.concatenate([[0], np.cumsum(hit, dtype=np.int64)])
    start = np.maximum(np.arange(hit.size) + 1 - bars, 0)
    return np.asarray(total[1:] - total[start])


def signal_at(
    columns: SignalColumns,
    i: int,
    min_rr: float = MIN_RR,
    tp_atr_cap: float = TP_ATR_CAP,
    *,
    recent: int = RECENT_BARS,
    min_sl_atr: float = MIN_SL_ATR,
    sl_buffer_atr: float = SL_BUFFER_ATR,
) -> SMCSetup | None:
    """`signal` for row i of a whole analysed frame: the same rules on the rows up to i only."""
    if i + 1 < recent:
        return None
    rows = columns.lists(max(0, i + 1 - max(recent, _BOS_COUNT_BARS)), i)
    end = i + 1 - rows.start  # the row's end in the lists
    atr = rows.columns["atr"][end - 1]
    if not math.isfinite(atr) or atr <= 0:
        return None
    closes = rows.columns["close"][end - recent : end]
    codes = rows.hits if columns.recent == recent else None  # counted for this window by signal_columns
    hits = None if codes is None else (codes[0][end - 1], codes[1][end - 1])
    args = (min_rr, tp_atr_cap, recent, min_sl_atr, sl_buffer_atr)
    return decide(rows.columns, end, closes, float(atr), *args, hits=hits)[0]


def decide(
    cols: Mapping[str, Column],
    end: int,
    closes: Column,
    atr: float,
    min_rr: float,
    tp_atr_cap: float,
    recent: int,
    min_sl_atr: float,
    sl_buffer_atr: float,
    hits: tuple[int, int] | None = None,
) -> tuple[SMCSetup | None, str]:
    """The setup of the row before `end` of `cols` (with at least `recent` rows up to it), or why there is
    none. `closes`: the last `recent` closes up to that row. `hits`: the row's BUY and SELL hit codes
    (`_hit_codes`) when already counted; else they are counted from `cols`."""
    entry = float(closes[-1])
    first = end - recent  # the recent rows: first..end-1, aligned with `closes`
    ms = int(cols["trend"][end - 1])

    refusals: list[str] = []
    for side, s in _SIDES:
        code = _hit_code(cols, first, end, s) if hits is None else hits[0 if s == 1 else 1]
        bos_hit, choch_hit, has_fvg, has_ob = (
            bool(code & _BOS),
            bool(code & _CHOCH),
            bool(code & _FVG),
            bool(code & _OB),
        )
        if not ((ms == s or bos_hit or choch_hit) and (has_fvg or has_ob)):
            continue
        zone = _pick_zone(cols, first, end, closes, s)
        if zone is None:
            refusals.append(f"{side.value}: price has closed through every recent zone")
            continue
        kind, top, bottom = zone
        word = "up" if side is Side.BUY else "down"
        head = _latest_break(cols, first, end, s, word) if (bos_hit or choch_hit) else f"trend {word}"
        bias = "bullish" if side is Side.BUY else "bearish"
        reason = f"{head} + {bias} {kind} {bottom:.2f}-{top:.2f}"
        limits = (min_rr, tp_atr_cap, min_sl_atr, sl_buffer_atr)
        setup, why = _build_setup(side, s, entry, atr, zone, limits, _confidence(ms == s, code), reason)
        if setup is None:
            refusals.append(why)
            continue
        return setup, reason
    return None, "; ".join(refusals) or "no structure + zone confluence on the recent bars"


@lru_cache(maxsize=64)
def _confidence(trend_agrees: bool, code: int) -> float:
    """A setup's confidence from its side's hit code (`_hit_codes`) and whether the trend is its side's:
    a few dozen combinations, each worked out once."""
    confidence = 0.40
    confidence += 0.15 if trend_agrees else 0.0
    confidence += 0.12 if code & (_BOS | _CHOCH) else 0.0
    confidence += 0.08 if code & _FVG else 0.0
    confidence += 0.10 if code & _OB else 0.0
    confidence += 0.10 if code & _TWO_BOS else 0.0
    return round(min(confidence, 0.85), 2)


def _hit_code(cols: Mapping[str, Column], first: int, end: int, s: int) -> int:
    """`_hit_codes`' code of the row before `end` for side `s`, counted from the rows."""
    code = 0
    for bit, flag in enumerate(_HIT_FLAGS):
        if s in cols[flag][first:end]:
            code |= 1 << bit
    two_bos = cols["bos"][max(0, end - _BOS_COUNT_BARS) : end].count(s) >= 2
    return code | (int(two_bos) << _TWO_BOS_BIT)


def _pick_zone(
    cols: Mapping[str, Column], first: int, end: int, closes: Column, s: int
) -> tuple[str, float, float] | None:
    """Most recent same-side FVG, else order block, that no close since it formed has gone through
    (`all` of the closes, not their min: a NaN close voids the zone, as numpy's min would). `s`: the
    side's sign."""
    buy = s == 1
    for kind, flag, top_col, bottom_col in _ZONES:
        flags = cols[flag]
        for k in range(end - 1, first - 1, -1):
            if flags[k] != s:
                continue
            top, bottom = float(cols[top_col][k]), float(cols[bottom_col][k])
            # every close since above the bottom (a BUY) / below the top (a SELL): `bottom < c` is
            # `c > bottom`, asked by `all` over `map` without a Python generator per zone
            held = bottom.__lt__ if buy else top.__gt__
            if all(map(held, closes[k - first :])):
                return kind, top, bottom
    return None


def _latest_break(cols: Mapping[str, Column], first: int, end: int, s: int, word: str) -> str:
    latest_bos = _last_row(cols["bos"], first, end, s)
    latest_choch = _last_row(cols["choch"], first, end, s)
    return f"BOS {word}" if latest_bos >= latest_choch else f"CHoCH {word}"


def _last_row(values: Column, first: int, end: int, s: int) -> int:
    """The last row in first..end-1 whose value is `s`, or -1."""
    for k in range(end - 1, first - 1, -1):
        if values[k] == s:
            return k
    return -1


def _round(x: float) -> float:
    return round(x + 0.0, 2)


def _build_setup(
    side: Side,
    s: int,
    entry: float,
    atr: float,
    zone: tuple[str, float, float],
    limits: tuple[float, float, float, float],
    confidence: float,
    reason: str,
) -> tuple[SMCSetup | None, str]:
    """The setup of `side` behind `zone` (kind, top, bottom) within `limits` (min_rr, tp_atr_cap,
    min_sl_atr, sl_buffer_atr), or why the stop it needs is refused."""
    kind, top, bottom = zone
    min_rr, tp_atr_cap, min_sl_atr, sl_buffer_atr = limits
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
        confidence=confidence,
        reason=reason,
        kind=kind,
        zone_top=_round(top),
        zone_bottom=_round(bottom),
        atr=round(atr, 4),
    )
    return setup, "ok"
