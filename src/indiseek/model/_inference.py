"""What a trained model computes for cells: representations, imputed modalities and per-feature predictability."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData

from indiseek._constants import X1_KEY, X2_KEY
from indiseek._validation import check_finite

from ._explained import marginal_decode
from ._imputation import check_impute_options, neighbor_decode
from ._preprocessing import aligned_counts, lognorm, query_counts

_KEYS = (X1_KEY, X2_KEY)


class ModelInference:
    """Inference methods of :class:`~indiseek.IndiSeek` (a mixin over scvi-tools' ``BaseModelClass``)."""

    def _check_trained(self, stages: list[str]) -> None:
        missing = [s for s in stages if s not in self.trained_stages_]
        if missing:
            raise RuntimeError(f"The {missing[0]} stage has not been trained yet: call `model.train()` first.")

    def _input_of(self, data: MuData | AnnData | None, i: int):
        """Model input of modality ``i`` for the training data (``None``) or new cells, checked to be finite."""
        new = data is not None and data is not self.adata
        x = self._query_matrix(data, i) if new else self._matrix(None, _KEYS[i])
        check_finite(x, f"The input of modality {self.modality_names[i]!r}")
        return x

    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: MuData | AnnData | None = None,
        *,
        modality: str | int = 0,
        kind: Literal["shared", "specific"] = "specific",
        indices: np.ndarray | None = None,
        batch_size: int = 4096,
    ) -> np.ndarray:
        """Shared or specific representation of one modality, for the training cells or new cells.

        Parameters
        ----------
        adata
            Cells to embed (``None``: the training MuData): a MuData that has this modality, or an AnnData of it.
            If the model was trained on the inputs of :func:`indiseek.pp.prepare`, raw counts in ``.X`` are
            prepared with the reference's own recipe (``preprocessing_``: its genes by name, library-size target,
            PCA and protein centres), whatever the query's own cells are; features it lacks count as zeros, with a
            warning. Otherwise the registered input is read and must be in the training data's input space.
        modality
            Modality name (e.g. ``"rna"``), ``"x1"``/``"x2"``, or 0/1.
        kind
            ``"shared"`` (:math:`C_i`) or ``"specific"`` (:math:`Z_i`).
        indices
            Integer positions of the cells to embed (``None``: all).
        batch_size
            Cells per forward pass.

        Returns
        -------
        Array of shape ``(n_cells, n_shared)`` or ``(n_cells, n_specific)``, in the order of the cells.

        Examples
        --------
        >>> import indiseek as isk
        >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
        >>> model = isk.tl.fit(mdata, max_epochs_shared=2, max_epochs_specific=2, n_comps=20, enable_progress_bar=False)
        >>> model.get_latent_representation(modality="prot", kind="shared").shape
        (300, 50)
        """
        if kind not in ("shared", "specific"):
            raise ValueError(f'`kind` must be "shared" or "specific", got {kind!r}.')
        if kind == "specific" and not self.module.has_specific:
            raise ValueError(
                'The CLIP-only baseline (objective="clip") learns no specific representations; use kind="shared".'
            )
        self._check_trained(["shared"] if kind == "shared" else ["shared", "specific"])
        i = self._modality_index(modality)
        x, batch = self._input_of(adata, i), self._cells_batch(adata, i)
        if indices is not None:
            x = x[np.asarray(indices)]
            batch = None if batch is None else batch[torch.as_tensor(np.asarray(indices))]
        self.module.eval()
        return self._encode(x, i, kind, batch_size, batch=batch).numpy()

    # ------------------------------------------------------------------------------------------------- imputation
    def _recipe(self, i: int) -> dict | None:
        return (getattr(self, "preprocessing_", None) or {}).get(self.modality_names[i])

    def _feature_names(self, i: int) -> list[str]:
        """Names of modality ``i``'s features in the units of :meth:`impute`."""
        recipe, name = self._recipe(i), self.modality_names[i]
        if recipe is not None:
            return list(recipe["var_names"])
        setup = self.registry_["setup_args"]
        obsm_key = setup[f"{_KEYS[i]}_obsm_key"]
        if obsm_key is None and self.module.sequence_shapes[i] is None:
            return list(self.input_features_[name]["var_names"])
        return [f"{obsm_key or name}_{k}" for k in range(self.module.n_inputs[i])]

    def _to_feature_units(self, i: int):
        """Map from decoder outputs (network units) of modality ``i`` to its feature units, as a tensor function."""
        unit, recipe = self.module._unit(i), self._recipe(i)
        if recipe is None or recipe["kind"] != "rna":
            return lambda d: d * unit
        device = self.module.input_scale.device
        loadings = torch.as_tensor(recipe["loadings"].T, dtype=torch.float64, device=device)
        centre = torch.as_tensor(recipe["mean"], dtype=torch.float64, device=device)
        return lambda d: (d * unit).double() @ loadings + centre

    def _marginal(self, c: torch.Tensor, t: int, n_samples: int, seed: int, batch_size: int, batch=None):
        """Mean and spread of modality ``t``'s decoder, in feature units, over the training cells' specific features.

        ``batch``: one-hot batches of the cells (``None``: decoded at the training cells' batch frequencies).
        """
        x_t, train_batch = self._training_cells(t)
        pool = self._encode(x_t, t, "specific", batch=train_batch)
        device = self.module.input_scale.device
        generator, to_units = torch.Generator().manual_seed(seed), self._to_feature_units(t)
        means, stds = [], []
        for start in range(0, len(c), batch_size):
            cb = c[start : start + batch_size].to(device)
            bb = None if batch is None else batch[start : start + batch_size].to(device)
            mean, std = marginal_decode(self.module, cb, pool.to(device), t, n_samples, generator, to_units, bb)
            means.append(mean.cpu().numpy())
            stds.append(std.cpu().numpy())
        n_features = len(self._feature_names(t))
        return tuple(np.concatenate(v) if v else np.zeros((0, n_features), np.float32) for v in (means, stds))

    def _training_cells(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Modality ``i``'s inputs of the training cells, in order, and their one-hot batches (``None``: no covariate)."""
        train = np.sort(self.train_indices)
        return self._dense(self._matrix(None, _KEYS[i]), train), self._batch_onehot(train)

    def _check_imputes(self, method: str, n_neighbors: int, n_samples: int) -> None:
        if not len(self.module.decoders):
            raise ValueError(f"objective={self.module.objective!r} has no decoders, so it cannot impute.")
        check_impute_options(method, n_neighbors, n_samples)
        self._check_trained(["shared", "specific"])

    def _predict(self, c_source: torch.Tensor, s: int, options: dict, batch: torch.Tensor | None = None):
        """Mean and spread of modality ``1 - s`` predicted from source shared features ``c_source`` (``_imputation``).

        ``options``: ``method``, ``n_neighbors``, ``n_samples``, ``seed`` and ``batch_size`` of :meth:`impute`.
        """
        t = 1 - s
        if options["method"] == "marginal":
            return self._marginal(c_source, t, options["n_samples"], options["seed"], options["batch_size"], batch)
        x_t, train_batch = self._training_cells(t)
        c_reference = self._encode(self._training_cells(s)[0], s, "shared")
        reference = (self._encode(x_t, t, "specific", batch=train_batch), self._encode(x_t, t, "shared"))
        return neighbor_decode(
            self.module,
            c_source,
            c_reference,
            reference,
            t,
            options["n_neighbors"],
            self._to_feature_units(t),
            batch,
            options["batch_size"],
        )

    @torch.inference_mode()
    def impute(
        self,
        adata: MuData | AnnData | None = None,
        *,
        source: str | int = "rna",
        method: Literal["neighbors", "marginal"] = "neighbors",
        n_neighbors: int = 15,
        n_samples: int = 100,
        seed: int = 0,
        batch_size: int = 1024,
    ) -> AnnData:
        r"""The other modality of cells that were measured in ``source`` alone, predicted from their shared features.

        :math:`Z_t` of the target modality is trained to be independent of :math:`C_s`, so what the source can tell
        about the target passes through the shared features, and the prediction estimates :math:`E[X_t \mid C_s]`.
        With ``method="neighbors"`` it is the mean of the reconstructions :math:`g_t(Z_t, C_t)` of the
        ``n_neighbors`` training cells nearest to the cell in the source's shared space, and ``layers["std"]`` their
        spread: what the source leaves open. With ``method="marginal"`` it is :math:`g_t(Z', C_s)` averaged over
        ``n_samples`` specific features :math:`Z'` drawn from the training cells; this decodes :math:`C_s` as if it
        were :math:`C_t`, which CLIP aligns only approximately, and predicts less well (the study is on
        :ref:`mapping`). With a batch covariate, the target is decoded at the training
        cells' batch frequencies: a batch-corrected prediction, whatever batch the query comes from.

        Parameters
        ----------
        adata
            Cells with the ``source`` modality (``None``: the training data), as :meth:`get_latent_representation`
            reads them: a MuData, or an AnnData of the source modality; raw counts are prepared with the
            reference's recipe.
        source
            The measured modality (name, ``"x1"``/``"x2"`` or 0/1); the other one is imputed.
        method
            ``"neighbors"`` or ``"marginal"``, as above.
        n_neighbors
            Training cells averaged per cell (``method="neighbors"``).
        n_samples
            Specific features drawn per cell (``method="marginal"``).
        seed
            Seed of the draws (``method="marginal"``).
        batch_size
            Cells per pass.

        Returns
        -------
        AnnData of cells x the target's features: protein CLR, centred as the reference's (``layers["clr"]`` of
        :func:`indiseek.pp.prepare`), or for RNA the log-normalised expression of the reference's genes; the target's
        input units if the model has no recipe for it. ``layers["std"]`` holds the spread;
        ``uns["indiseek_imputed"]`` the source and the method.

        Examples
        --------
        >>> import indiseek as isk
        >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
        >>> model = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
        >>> rna_only = mdata["rna"][:40].copy()
        >>> imputed = model.impute(rna_only, source="rna")
        >>> imputed.shape, imputed.layers["std"].shape
        ((40, 25), (40, 25))
        """
        self._check_imputes(method, n_neighbors, n_samples)
        s = self._modality_index(source)
        options = {"method": method, "n_neighbors": n_neighbors, "n_samples": n_samples, "seed": seed}
        c = self._encode(self._input_of(adata, s), s, "shared")
        mean, std = self._predict(c, s, {**options, "batch_size": batch_size})
        if adata is None or adata is self.adata:
            cells = self.adata.mod[self.modality_names[s]].obs_names
        else:
            cells = self._query_modality(adata, s).obs_names
        return AnnData(
            X=mean,
            layers={"std": std},
            obs=pd.DataFrame(index=cells.copy()),
            var=pd.DataFrame(index=pd.Index(self._feature_names(1 - s))),
            uns={"indiseek_imputed": {"source": self.modality_names[s], **options}},
        )

    def _measured(self, t: int, cells: np.ndarray) -> np.ndarray:
        """Modality ``t``'s measured values of training cells ``cells``, in the feature units of :meth:`impute`."""
        recipe, name = self._recipe(t), self.modality_names[t]
        mod = self.adata.mod[name]
        if recipe is not None and recipe["kind"] == "rna" and query_counts(mod, recipe) is not None:
            counts = aligned_counts(mod[cells], recipe, name)
            return np.asarray(lognorm(counts, recipe["target_sum"]).toarray(), dtype=np.float64)
        x = self._dense(self._matrix(None, _KEYS[t]), cells)
        return self._to_feature_units(t)(self.module.scaled(x, t)).double().cpu().numpy()

    @torch.inference_mode()
    def predictability(
        self,
        target: str | int = "prot",
        *,
        method: Literal["neighbors", "marginal"] = "neighbors",
        n_neighbors: int = 15,
        n_samples: int = 100,
        seed: int = 0,
    ) -> pd.DataFrame:
        r"""Per feature of ``target``: how much of its variance the other modality predicts, and the model explains.

        On the held-out validation cells of the training data (the training cells if none were held out), in the
        units of :meth:`impute`:

        * ``predicted_r2``: :math:`R^2` of :meth:`impute` from the other modality alone;
        * ``reconstructed_r2``: :math:`R^2` of the full reconstruction :math:`g_t(Z_t, C_t)`;
        * ``predictable_share``: ``predicted_r2`` (floored at 0) over ``reconstructed_r2``, capped at 1: the share
          of what the model captures of the feature that the other modality could have told (``NaN`` where the
          reconstruction explains nothing). A low share marks a feature that only its own measurement reveals.

        Parameters
        ----------
        target
            The modality whose features are scored.
        method, n_neighbors, n_samples, seed
            How the other modality predicts the target: as in :meth:`impute`.

        Returns
        -------
        DataFrame indexed by the target's features, in their order.

        Examples
        --------
        >>> import indiseek as isk
        >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
        >>> model = isk.tl.fit(mdata, n_comps=20, max_epochs_shared=2, max_epochs_specific=2, enable_progress_bar=False)
        >>> table = model.predictability("prot")
        >>> list(table.columns)
        ['predicted_r2', 'reconstructed_r2', 'predictable_share']
        """
        self._check_imputes(method, n_neighbors, n_samples)
        t = self._modality_index(target)
        s = 1 - t
        held_out = np.sort(np.asarray(self.validation_indices))
        cells = held_out if len(held_out) else np.sort(np.asarray(self.train_indices))
        measured = self._measured(t, cells)
        batch = self._batch_onehot(cells)
        c_source = self._encode(self._dense(self._matrix(None, _KEYS[s]), cells), s, "shared")
        options = {"method": method, "n_neighbors": n_neighbors, "n_samples": n_samples, "seed": seed}
        predicted = self._predict(c_source, s, {**options, "batch_size": 1024}, batch)[0]
        x_t = self._dense(self._matrix(None, _KEYS[t]), cells)
        c_t, z_t = (self._encode(x_t, t, kind, batch=batch) for kind in ("shared", "specific"))
        device = self.module.input_scale.device
        batch = None if batch is None else batch.to(device)
        decoded = self.module.decode(z_t.to(device), c_t.to(device), t, batch)
        reconstructed = self._to_feature_units(t)(decoded).double().cpu().numpy()
        table = pd.DataFrame(
            {"predicted_r2": r_squared(measured, predicted), "reconstructed_r2": r_squared(measured, reconstructed)},
            index=pd.Index(self._feature_names(t)),
        )
        share = table["predicted_r2"].clip(lower=0) / table["reconstructed_r2"]
        table["predictable_share"] = share.clip(upper=1).where(table["reconstructed_r2"] > 0)
        return table


def r_squared(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per column: 1 - residual sum of squares / total sum of squares (``NaN`` for a constant column)."""
    residual = ((measured - predicted) ** 2).sum(axis=0)
    total = ((measured - measured.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - residual / total, np.nan)
