"""Network and lambda settings of the presets: ``"auto"`` adapts to the number of cells, ``"paper"`` is fixed."""

from __future__ import annotations

#: The paper's networks and lambda (5-layer ReLU MLPs of width 50, no dropout, no input masking, lambda = 10).
PAPER = {"n_hidden": 50, "n_layers": 5, "dropout": 0.0, "input_dropout": 0.0, "lam": 10.0}
PRESETS = ("auto", "paper")
#: ``preset="auto"``: (bound, layers, dropout, input dropout) by number of cells: fewer than the bound -> that depth,
#: dropout rate and share of masked input features; from the last bound on, the paper's networks (which the paper
#: tuned for 15,000 training cells).
NETWORKS_BY_CELLS = ((2_000, 2, 0.2, 0.5), (10_000, 3, 0.2, 0.0))


def preset_settings(preset: str, n_cells: int) -> dict:
    """``n_hidden``, ``n_layers``, ``dropout``, ``input_dropout`` and ``lam`` of ``preset`` for ``n_cells`` cells.

    Examples
    --------
    >>> preset_settings("auto", 600)
    {'n_hidden': 50, 'n_layers': 2, 'dropout': 0.2, 'input_dropout': 0.5, 'lam': 'auto'}
    >>> preset_settings("auto", 15_000)
    {'n_hidden': 50, 'n_layers': 5, 'dropout': 0.0, 'input_dropout': 0.0, 'lam': 'auto'}
    >>> preset_settings("paper", 600)["n_layers"]
    5
    """
    if preset == "paper":
        return dict(PAPER)
    if preset != "auto":
        raise ValueError(f"`preset` must be one of {PRESETS}, got {preset!r}.")
    paper = (PAPER["n_layers"], PAPER["dropout"], PAPER["input_dropout"])
    depth, dropout, input_dropout = next((rule[1:] for rule in NETWORKS_BY_CELLS if n_cells < rule[0]), paper)
    return {
        "n_hidden": PAPER["n_hidden"],
        "n_layers": depth,
        "dropout": dropout,
        "input_dropout": input_dropout,
        "lam": "auto",
    }
