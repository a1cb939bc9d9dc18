"""How the model reads its inputs: registered matrices as tensors, packed sequences, and the training input space."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from mudata import MuData

from indiseek._constants import BATCH_KEY, LENGTH_KEY, SEQUENCE_KEY, X1_KEY, X2_KEY
from indiseek._inputs import input_spec, read_input
from indiseek._sequences import pack
from indiseek._validation import check_finite

from ._fingerprint import check_fingerprint
from ._preprocessing import prepare_query, query_counts

_KEYS = (X1_KEY, X2_KEY)


class ModelInputs:
    """Input helpers of :class:`~indiseek.IndiSeek` (a mixin over scvi-tools' ``BaseModelClass``)."""

    def _sequence_spec(self, mdata: MuData | None, i: int, check: bool = True) -> tuple[int, int, str] | None:
        """``(n_steps, n_features, padding)`` of modality ``i`` if it is registered as a sequence, else ``None``."""
        mdata = self.adata if mdata is None else mdata
        if f"{_KEYS[i]}_{LENGTH_KEY}" not in self.adata_manager.data_registry:
            return None
        spec = mdata.mod[self.modality_names[i]].uns.get(SEQUENCE_KEY)
        if spec is None:
            raise ValueError(
                f"Modality {self.modality_names[i]!r} was trained as a sequence, but this MuData has no "
                f"`.uns[{SEQUENCE_KEY!r}]`; build it with `indiseek.data.from_arrays`."
            )
        shape = (int(spec["n_steps"]), int(spec["n_features"]))
        if check and shape != self.module.sequence_shapes[i]:
            raise ValueError(
                f"Modality {self.modality_names[i]!r} has sequences of shape {shape}; the model was trained on "
                f"{self.module.sequence_shapes[i]}."
            )
        return (*shape, spec["padding"])

    def _matrix(self, mdata: MuData | None, key: str):
        """The registered matrix of modality ``key`` (the user's data, never modified).

        For a sequence modality, the model's packed input: the values followed by the step indicators.
        """
        mdata = self._validate_anndata(mdata)
        manager = self.get_anndata_manager(mdata, required=True)
        x = manager.get_from_registry(key)
        if isinstance(x, pd.DataFrame):
            x = x.to_numpy()
        spec = self._sequence_spec(mdata, _KEYS.index(key))
        if spec is not None:
            lengths = np.asarray(manager.get_from_registry(f"{key}_{LENGTH_KEY}")).ravel()
            x = pack(x.toarray() if sp.issparse(x) else x, lengths, spec[0], spec[2])
        return x

    def _dense(self, x, rows: np.ndarray | None = None) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x if rows is None else x[torch.as_tensor(rows)]
        x = x if rows is None else x[rows]
        x = x.toarray() if sp.issparse(x) else np.asarray(x)
        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))

    def _training_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        tensors = []
        for key, name in zip(_KEYS, self.modality_names, strict=True):
            x = self._matrix(None, key)
            check_finite(x, f"The input of modality {name!r}")
            tensors.append(self._dense(x))
        return tensors[0], tensors[1]

    @property
    def batch_names(self) -> list[str] | None:
        """Categories of the batch covariate, in the order of the one-hot columns (``None`` without one)."""
        if BATCH_KEY not in self.adata_manager.data_registry:
            return None
        return [str(k) for k in self.adata_manager.get_state_registry(BATCH_KEY)["categorical_mapping"]]

    def _batch_onehot(self, rows: np.ndarray | None = None) -> torch.Tensor | None:
        """One-hot batches of the training data's cells (``rows``: some of them); ``None`` without a covariate."""
        names = self.batch_names
        if names is None or len(names) < 2:
            return None
        codes = np.asarray(self.adata_manager.get_from_registry(BATCH_KEY)).ravel().astype(np.int64)
        codes = codes if rows is None else codes[rows]
        return torch.nn.functional.one_hot(torch.as_tensor(codes), len(names)).float()

    def _cells_batch(self, data: MuData | AnnData | None, i: int) -> torch.Tensor | None:
        """One-hot batches of the cells of modality ``i`` in ``data`` (``None``: the training data).

        A query's batches are read from the covariate's column (``mdata.obs``, or the modality's ``.obs``); cells
        without one, or of a batch the model has not seen, get the training cells' batch frequencies, with a
        warning. ``None`` for a model without a batch covariate.
        """
        names = self.batch_names
        if names is None or len(names) < 2:
            return None
        if data is None or data is self.adata:
            return self._batch_onehot()
        mod = self._query_modality(data, i)
        key = self.adata_manager.get_state_registry(BATCH_KEY)["original_key"]
        labels = query_labels(data, mod, key)
        codes = pd.Categorical(labels, categories=names).codes if labels is not None else np.full(mod.n_obs, -1)
        known = codes >= 0
        out = self.module.batch_prior.detach().cpu().float().expand(mod.n_obs, -1).clone()
        out[torch.as_tensor(known)] = torch.nn.functional.one_hot(
            torch.as_tensor(codes[known].astype(np.int64)), len(names)
        ).float()
        if not known.all():
            where = f"no column {key!r}" if labels is None else f"{int((~known).sum())} cell(s) of unseen batches"
            warnings.warn(
                f"The query has {where}: those cells are encoded and decoded at the training cells' batch "
                f"frequencies. Give `obs[{key!r}]` the reference's batch names ({names}) where they match.",
                UserWarning,
                stacklevel=4,
            )
        return out

    def _batches(self, x, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        for start in range(0, x.shape[0], batch_size):
            rows = np.arange(start, min(start + batch_size, x.shape[0]))
            yield rows, self._dense(x, rows)

    @torch.no_grad()
    def _encode(self, x, i: int, kind: str, batch_size: int = 4096, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Representation ``kind`` of modality ``i`` for the rows of ``x`` (array or tensor), in evaluation mode.

        ``batch``: the rows' one-hot batches, for a specific encoder that sees the batch (``None``: the training
        cells' batch frequencies).
        """
        was_training = self.module.training
        self.module.eval()
        device = self.device
        if kind == "shared":
            encode = lambda rows, b: self.module.shared(b, i)
        else:
            encode = lambda rows, b: self.module.specific(b, i, None if batch is None else batch[rows].to(device))
        out = [encode(rows, b.to(device)).cpu() for rows, b in self._batches(x, batch_size)]
        self.module.train(was_training)
        return torch.cat(out) if out else torch.zeros((0, 0))

    def _query_modality(self, data: MuData | AnnData, i: int) -> AnnData:
        """Modality ``i`` of a query: a MuData's modality of that name, or an AnnData given as that modality."""
        name = self.modality_names[i]
        if isinstance(data, AnnData):
            return data
        if name not in data.mod:
            raise KeyError(f"Modality {name!r} is not in the query; it has {list(data.mod)}.")
        return data.mod[name]

    def _query_matrix(self, data: MuData | AnnData, i: int):
        """Model input of modality ``i`` for new cells.

        With the reference's recipe (``preprocessing_``) and raw counts, the counts are prepared as the reference's
        were; otherwise the registered input is read and must be in the training data's input space.
        """
        name, key = self.modality_names[i], _KEYS[i]
        if self.module.sequence_shapes[i] is not None:
            if not isinstance(data, MuData):
                raise TypeError(
                    f"Sequence modality {name!r} is read from a MuData built by `indiseek.data.from_arrays`."
                )
            check_fingerprint(self.input_features_[name], self._query_modality(data, i), name)
            return self._matrix(data, key)
        mod = self._query_modality(data, i)
        recipe = (getattr(self, "preprocessing_", None) or {}).get(name)
        if recipe is not None and query_counts(mod, recipe) is not None:
            return prepare_query(mod, recipe, name)
        check_fingerprint(self.input_features_[name], mod, name)
        setup = self.registry_["setup_args"]
        return read_input(mod, input_spec(setup[f"{key}_layer"], setup[f"{key}_obsm_key"]), name)

    def _modality_index(self, modality: str | int) -> int:
        names = self.modality_names
        if modality in (0, 1):
            return int(modality)
        if modality in names:
            return names.index(modality)
        if modality in _KEYS:
            return _KEYS.index(modality)
        raise ValueError(f"Unknown modality {modality!r}; this model knows {names}.")


def query_labels(data: MuData | AnnData, mod: AnnData, key: str) -> np.ndarray | None:
    """``key``'s labels of the cells of ``mod`` (a query's modality), as strings; ``None`` where no column has them."""
    if key in mod.obs:
        column = mod.obs[key]
    elif (
        isinstance(data, MuData)
        and key in data.obs
        and data.obs_names.is_unique
        and mod.obs_names.isin(data.obs_names).all()
    ):
        column = data.obs[key].loc[mod.obs_names]
    else:
        return None
    return np.where(column.isna(), None, column.astype(str)).astype(object)
