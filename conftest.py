"""Settings for every test, the doctests in src/ included."""

import logging

import matplotlib
import scvi

matplotlib.use("Agg")  # plots in tests and doctests never open windows
scvi.settings.verbosity = logging.WARNING  # scvi-tools' INFO lines go to stdout and would enter doctest output
# Lightning's early-stopping notice is an INFO line on stdout too
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
