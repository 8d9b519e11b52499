"""The SMC picture of one appended bar: `trading.smc.analyze`'s row and `signal_at`'s setup, from the
rules' carried state and the last few bars.

`SmcCarry.of(bars)` runs the same kernel over the history once (`smc_kernels.sequential_rules_state`);
`step` runs it for the new bar alone (`smc_kernels.smc_step`), steps the ATR and reads the fair value
gap of the last three bars, so the row is the one `analyze` gives for the whole history. The setup
reads the last 20 rows of the picture, kept here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trading import smc
from trading.smc_kernels import atr_series, atr_step, new_state, sequential_rules_state, smc_step

SWING_LENGTH, OB_LOOKBACK = 5, 10  # smc.analyze's defaults, the ones the analyzer uses
STEP_ROWS = 2 * SWING_LENGTH + 1  # the swing window (the widest look back of a step)
KEPT = 32  # rows of the picture kept: the setup reads 20, the previous bar's setup 21
_SETUP_COLUMNS = (*smc.SIGNAL_COLUMNS, "atr")  # what `signal_at` reads
_EVENTS = tuple(c for c in smc.SMC_COLUMNS[3:] if not c.startswith("fvg"))  # what a step sets besides the FVG


def fvg_row(high: np.ndarray, low: np.ndarray) -> tuple[int, float, float]:
    """`smc.fair_value_gaps` of the last of these rows (at least 3): (signal, top, bottom)."""
    h2, l2, h0, l0 = float(high[-3]), float(low[-3]), float(high[-1]), float(low[-1])
    if l0 - h2 > 0:  # a bullish gap (the two cannot both hold: a bar's low is below its high)
        return 1, l0, h2
    if l2 - h0 > 0:
        return -1, l2, h0
    return 0, float("nan"), float("nan")


@dataclass(slots=True)
class SmcCarry:
    fs: np.ndarray  # smc_kernels' float state
    ist: np.ndarray  # and int state
    highs: np.ndarray  # the untaken liquidity levels (a stack, `ist` holds its depth)
    lows: np.ndarray
    atr: float  # ATR(14) at the last row (smc_kernels.atr_series)
    kept: dict[str, np.ndarray] = field(default_factory=dict)  # the last KEPT rows of _SETUP_COLUMNS

    @classmethod
    def of(cls, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> SmcCarry:
        """The state after the last of these rows (the whole history the live analysis starts from)."""
        fs, ist = new_state()
        n = c.size
        highs, lows = np.empty(n + 16), np.empty(n + 16)
        ev = sequential_rules_state(o, h, lo, c, SWING_LENGTH, OB_LOOKBACK, fs, ist, highs, lows)
        events = dict(zip(_EVENTS, ev, strict=True))
        atr = atr_series(h, lo, c, smc.ATR_PERIOD)
        fvg, top, bottom = smc.fair_value_gaps(h, lo)
        columns = {"close": c, "atr": atr, "fvg": fvg, "fvg_top": top, "fvg_bottom": bottom} | {
            k: events[k] for k in ("ob", "ob_top", "ob_bottom", "bos", "choch", "trend")
        }
        kept = {k: np.asarray(columns[k][-KEPT:], dtype=np.float64) for k in _SETUP_COLUMNS}
        return cls(fs, ist, highs, lows, float(atr[-1]) if n else float("nan"), kept)

    @property
    def ready(self) -> bool:
        """Past the ATR's seed and with the rows the setup reads."""
        return bool(np.isfinite(self.atr)) and self.kept["close"].size >= KEPT

    def step(self, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, float]:
        """`smc.analyze`'s row of the last of these rows (at least STEP_ROWS, float64); the state moves on."""
        if c.size < STEP_ROWS:
            raise ValueError(f"an SMC step needs the last {STEP_ROWS} rows, got {c.size}")
        o, h, lo, c = o[-STEP_ROWS:], h[-STEP_ROWS:], lo[-STEP_ROWS:], c[-STEP_ROWS:]
        depth = int(self.ist[1]), int(self.ist[2])
        if max(depth) + 1 >= self.highs.size:  # room for one more level on each stack
            self.highs = np.concatenate([self.highs, np.empty(self.highs.size)])
            self.lows = np.concatenate([self.lows, np.empty(self.lows.size)])
        ev = smc_step(
            o, h, lo, c, STEP_ROWS - 1, SWING_LENGTH, OB_LOOKBACK, self.fs, self.ist, self.highs, self.lows
        )
        row: dict[str, float] = dict(zip(_EVENTS, ev, strict=True))
        self.atr = atr_step(self.atr, float(h[-1]), float(lo[-1]), float(c[-2]), smc.ATR_PERIOD)
        fvg, top, bottom = fvg_row(h, lo)
        row |= {"close": float(c[-1]), "atr": self.atr, "fvg": fvg, "fvg_top": top, "fvg_bottom": bottom}
        for k, values in self.kept.items():
            self.kept[k] = np.append(values[1 - KEPT :] if values.size >= KEPT else values, row[k])
        return row

    def setups(self) -> tuple[smc.SMCSetup | None, smc.SMCSetup | None]:
        """`smc.signal_at` of the last row and of the row before (ready only)."""
        columns = smc.signal_columns_of(self.kept)
        last = self.kept["close"].size - 1
        return smc.signal_at(columns, last), smc.signal_at(columns, last - 1)
