"""Figure handling shared by the plotting functions (scanpy's ``show``/``save``/``return_fig`` conventions)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def finish(fig: Figure, *, show: bool | None, save: str | Path | None, return_fig: bool) -> Figure | None:
    """Save the figure if asked, then return it (``return_fig``) or show it (``show``, default: when not saved)."""
    if save:
        fig.savefig(save, bbox_inches="tight", dpi=150)
    if return_fig:
        return fig
    if show is None:
        show = not save
    if show:
        plt.show()
    else:
        plt.close(fig)
    return None
