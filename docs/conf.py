"""Sphinx configuration (cookiecutter-scverse style: myst-nb, autosummary, numpy docstrings)."""

import sys
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _inventories import write_inventories  # noqa: E402

project = "indiseek"
author = "The indiseek team"
copyright = "2026, the indiseek team"
release = _version("indiseek")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = [("Params", "Parameters")]
myst_enable_extensions = ["dollarmath", "colon_fence"]
nb_execution_mode = "off"  # the tutorials are committed with their outputs, executed on the project machine
# .rst first: autosummary writes its stubs in the first suffix, and myst would show rst directives as text
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_inventories.py"]
html_theme = "sphinx_book_theme"
html_title = "indiseek"
html_static_path = ["_static"]
intersphinx_mapping = write_inventories(Path(__file__).parent / "_build" / "inventories")  # offline: no fetching
nitpicky = False
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
