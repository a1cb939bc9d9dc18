"""Intersphinx inventories written at build time, so that API links resolve without fetching anything.

The builds run offline; each inventory lists the objects of another project that this documentation links to, with
the address of its page in that project's published documentation.
"""

from __future__ import annotations

import zlib
from pathlib import Path

#: project -> (base address, {object: (role, page relative to the base)})
_PROJECTS = {
    "python": (
        "https://docs.python.org/3/",
        {
            "int": ("class", "library/functions.html#int"),
            "float": ("class", "library/functions.html#float"),
            "str": ("class", "library/stdtypes.html#str"),
            "bool": ("class", "library/functions.html#bool"),
            "dict": ("class", "library/stdtypes.html#dict"),
            "list": ("class", "library/stdtypes.html#list"),
            "tuple": ("class", "library/stdtypes.html#tuple"),
            "FloatingPointError": ("exception", "library/exceptions.html#FloatingPointError"),
        },
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        {"numpy.ndarray": ("class", "reference/generated/numpy.ndarray.html")},
    ),
    "anndata": (
        "https://anndata.readthedocs.io/en/stable/",
        {"anndata.AnnData": ("class", "generated/anndata.AnnData.html")},
    ),
    "mudata": (
        "https://mudata.readthedocs.io/en/latest/",
        {"mudata.MuData": ("class", "api/generated/mudata.MuData.html")},
    ),
    "scanpy": (
        "https://scanpy.readthedocs.io/en/stable/",
        {
            f"scanpy.{name}": ("function", f"api/generated/scanpy.{name}.html")
            for name in ("pp.neighbors", "pp.pca", "tl.umap", "tl.leiden", "pl.embedding", "pl.umap")
        },
    ),
    "scvi-tools": (
        "https://docs.scvi-tools.org/en/stable/",
        {
            f"scvi.{name}": ("class", f"api/reference/scvi.{name}.html")
            for name in (
                "model.base.BaseModelClass",
                "module.base.BaseModuleClass",
                "module.base.LossOutput",
                "data.AnnDataManager",
                "train.TrainRunner",
                "train.Trainer",
                "model.TOTALVI",
            )
        },
    ),
}


def _inventory(project: str, objects: dict[str, tuple[str, str]]) -> bytes:
    header = f"# Sphinx inventory version 2\n# Project: {project}\n# Version: \n"
    header += "# The remainder of this file is compressed using zlib.\n"
    lines = "".join(f"{name} py:{role} 1 {page} -\n" for name, (role, page) in objects.items())
    return header.encode() + zlib.compress(lines.encode())


def write_inventories(folder: Path) -> dict[str, tuple[str, str]]:
    """Write one inventory per project into ``folder``; return the ``intersphinx_mapping`` that reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for project, (base, objects) in _PROJECTS.items():
        path = folder / f"{project}.inv"
        path.write_bytes(_inventory(project, objects))
        mapping[project] = (base, str(path))
    return mapping
