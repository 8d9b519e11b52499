"""Where labels go so that none covers another: pure geometry on boxes in display pixels.

`stack_rows` puts labels that start along one line (halt labels along the top of the equity chart)
into rows; `push_clear` moves labels (BOS/CHoCH above or below their candle) away from their
anchor until they cover neither a fixed obstacle (the regime label, a position's price tag) nor a
label placed before them. No matplotlib here: the chart measures its texts and applies the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GAP_PX = 2.0  # air between two labels


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in display pixels (y grows upwards, as matplotlib's display space)."""

    x0: float
    x1: float
    y0: float
    y1: float

    def shifted(self, dy: float) -> Box:
        return Box(self.x0, self.x1, self.y0 + dy, self.y1 + dy)

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        return (
            self.x0 < other.x1 + gap
            and other.x0 < self.x1 + gap
            and self.y0 < other.y1 + gap
            and other.y0 < self.y1 + gap
        )


def stack_rows(lefts: Sequence[float], rights: Sequence[float], gap: float = GAP_PX) -> list[int]:
    """Row (0 = first) for each label spanning lefts[i]..rights[i] on one line: the first row where it
    clears the label before it in that row. Labels are taken left to right; the result is in input order."""
    if len(lefts) != len(rights):
        raise ValueError(f"{len(lefts)} lefts but {len(rights)} rights")
    row_ends: list[float] = []
    rows = [0] * len(lefts)
    for i in sorted(range(len(lefts)), key=lambda k: lefts[k]):
        row = next((r for r, end in enumerate(row_ends) if lefts[i] >= end + gap), len(row_ends))
        if row == len(row_ends):
            row_ends.append(rights[i])
        else:
            row_ends[row] = rights[i]
        rows[i] = row
    return rows


def push_clear(
    boxes: Sequence[Box],
    directions: Sequence[int],
    obstacles: Sequence[Box] = (),
    gap: float = GAP_PX,
    max_steps: int = 50,
) -> list[float]:
    """Vertical shift (pixels) for each box so that it overlaps no obstacle and no box placed before it.

    Boxes are placed in order; a box with direction +1 only moves up, -1 only down (away from the
    candle it labels). Each step jumps just past the box it hits, so a crowded corner costs a few steps."""
    if len(boxes) != len(directions):
        raise ValueError(f"{len(boxes)} boxes but {len(directions)} directions")
    placed: list[Box] = list(obstacles)
    shifts: list[float] = []
    for box, direction in zip(boxes, directions, strict=True):
        up = direction >= 0
        dy = 0.0
        for _ in range(max_steps):
            moved = box.shifted(dy)
            hit = next((p for p in placed if moved.overlaps(p, gap)), None)
            if hit is None:
                break
            dy += (hit.y1 + gap - moved.y0) if up else (hit.y0 - gap - moved.y1)
        placed.append(box.shifted(dy))
        shifts.append(dy)
    return shifts
