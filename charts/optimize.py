"""An optimisation study's trials as PNG bytes: each trial's score, the running best, the defaults.

Takes plain numbers (trial numbers and scores); it knows nothing of Optuna or the strategy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from charts.style import DARK, Theme, new_figure, no_data_figure, render_png, set_title, style_axes


def trials_chart(
    numbers: Sequence[int],
    scores: Sequence[float],
    *,
    chosen: int | None = None,
    reference: float | None = None,
    reference_label: str = "defaults",
    title: str = "",
    score_label: str = "score",
    note: str = "",
) -> bytes:
    return render_png(
        trials_figure(
            numbers,
            scores,
            chosen=chosen,
            reference=reference,
            reference_label=reference_label,
            title=title,
            score_label=score_label,
            note=note,
        )
    )


def trials_figure(
    numbers: Sequence[int],
    scores: Sequence[float],
    *,
    chosen: int | None = None,
    reference: float | None = None,
    reference_label: str = "defaults",
    title: str = "",
    score_label: str = "score",
    note: str = "",
    theme: Theme = DARK,
) -> Figure:
    """`note` goes under the x axis (e.g. how many trials were left out)."""
    n = np.asarray(numbers, dtype=float)
    s = np.asarray(scores, dtype=float)
    if n.size != s.size:
        raise ValueError(f"{s.size} scores for {n.size} trial numbers")
    keep = np.isfinite(s) & np.isfinite(n)
    if not keep.any():
        return no_data_figure("no trials", title, theme)
    order = np.argsort(n[keep])
    n, s = n[keep][order], s[keep][order]
    fig = new_figure(theme)
    ax = fig.add_axes((0.1, 0.12, 0.86, 0.78))
    style_axes(ax, theme)
    ax.scatter(n, s, s=18, color=theme.accent, alpha=0.7, label="trial", gid="trials")
    ax.step(
        n,
        np.maximum.accumulate(s),
        where="post",
        color=theme.up,
        linewidth=1.6,
        label="best so far",
        gid="best",
    )
    if reference is not None and np.isfinite(reference):
        ax.axhline(
            reference,
            color=theme.muted,
            linestyle="--",
            linewidth=1.2,
            label=reference_label,
            gid="reference",
        )
    if chosen is not None and chosen in set(n.astype(int).tolist()):
        k = int(np.flatnonzero(n.astype(int) == chosen)[0])
        ax.scatter(
            [n[k]],
            [s[k]],
            s=90,
            facecolors="none",
            edgecolors=theme.down,
            linewidths=2,
            label="chosen",
            gid="chosen",
        )
    ax.set_xlabel("trial" + (f" ({note})" if note else ""), fontsize=theme.note_size, color=theme.muted)
    ax.set_ylabel(score_label, fontsize=theme.note_size, color=theme.muted)
    ax.legend(
        loc="lower right",
        fontsize=theme.note_size,
        facecolor=theme.panel,
        edgecolor=theme.grid,
        labelcolor=theme.text,
    )
    set_title(fig, ax, title, f"{n.size} trials · best {s.max():.2f}", theme)
    return fig
