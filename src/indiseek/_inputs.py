"""Where a modality's input lives (``"X"``, ``"layers/<name>"``, ``"obsm/<key>"``) and which modality is which."""

from __future__ import annotations

import anndata as ad
from mudata import MuData

from indiseek._constants import PREPARE_KEY, PROTEIN_NAMES, RNA_NAMES


def parse_input(spec: str, modality: str) -> tuple[str | None, str | None]:
    """``(layer, obsm key)`` of an input spec: ``"X"`` is ``(None, None)``."""
    if spec == "X":
        return None, None
    where, _, key = spec.partition("/")
    if where not in ("layers", "obsm") or not key:
        raise ValueError(f'Input {spec!r} of modality {modality!r} must be "X", "layers/<name>" or "obsm/<key>".')
    return (key, None) if where == "layers" else (None, key)


def input_spec(layer: str | None, obsm_key: str | None) -> str:
    """The spec string of ``(layer, obsm key)``, as :func:`parse_input` reads it."""
    return "obsm/" + obsm_key if obsm_key else "layers/" + layer if layer else "X"


def read_input(adata: ad.AnnData, spec: str, modality: str):
    """The matrix that ``spec`` names in one modality (dense or sparse, as stored)."""
    layer, obsm_key = parse_input(spec, modality)
    store, key = (adata.obsm, obsm_key) if obsm_key else (adata.layers, layer)
    if key is None:
        return adata.X
    if key not in store:
        raise KeyError(
            f"Input {spec!r} of modality {modality!r} was not found (it has {list(store)}); run "
            "`indiseek.pp.prepare(mdata)` to create the default inputs, or pass an existing key."
        )
    return store[key]


def prepared_input(mdata: MuData, modality: str) -> str | None:
    """The input that :func:`indiseek.pp.prepare` made for ``modality`` (``None``: not prepared)."""
    record = mdata.uns.get(PREPARE_KEY)
    if record is None:
        return None
    return {record["rna"]: record["rna_input"], record["prot"]: record["prot_input"]}.get(modality)


def guess_modalities(mdata: MuData) -> tuple[str | None, str | None]:
    """The RNA and protein modalities of a MuData by name (case-insensitive); ``None`` where no name matches."""
    names = list(mdata.mod)
    rna = next((m for m in names if m.lower() in RNA_NAMES), None)
    prot = next((m for m in names if m.lower() in PROTEIN_NAMES), None)
    return rna, prot
