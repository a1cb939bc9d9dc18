"""Settings for every test, the doctests in src/ included."""

import logging

import scvi

scvi.settings.verbosity = logging.WARNING  # scvi-tools' INFO lines go to stdout and would enter doctest output
