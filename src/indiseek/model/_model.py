"""The IndiSeek model: an scvi-tools model class over MuData."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData
from scvi import settings
from scvi.data import AnnDataManager
from scvi.data.fields import MuDataLayerField, MuDataNumericalObsField, MuDataObsmField
from scvi.model.base import BaseModelClass
from scvi.train import TrainRunner

from indiseek._constants import X1_KEY, X2_KEY
from indiseek._validation import check_finite, check_mudata
from indiseek.data._arrays import LENGTH_KEY, SEQUENCE_KEY, step_indicators

from ._data import InMemoryDataSplitter
from ._interrupt import StopOnInterrupt
from ._module import IndiSeekModule
from ._trainingplan import IndiSeekTrainingPlan

logger = logging.getLogger(__name__)

_KEYS = (X1_KEY, X2_KEY)
#: Optimiser steps per loader batch in stage 1, whose steps are too small for Lightning's per-batch overhead (about
#: 1 ms): the loader hands over 8 consecutive batches of the shuffled order at once and the plan steps through them,
#: which trains exactly as batch by batch.
_STAGE1_STEPS_PER_BATCH = 8


def _default_epochs(n_train: int, batch_size: int, stage: str) -> int:
    """Default epoch cap of a stage.

    Stage 1: up to 20,000 steps (between 50 and 500 epochs); early stopping usually ends it much sooner. Stage 2:
    4,000 encoder steps (between 20 and 300 epochs), each with its estimator steps.
    """
    steps_per_epoch = max(1, n_train // batch_size)
    if stage == "shared":
        return int(np.clip(round(20_000 / steps_per_epoch), 50, 500))
    return int(np.clip(round(4_000 / steps_per_epoch), 20, 300))


def _strategy(strategy):
    """A DDP strategy name as a strategy that tolerates parameters without gradients (each stage trains some nets)."""
    if not isinstance(strategy, str) or not strategy.startswith("ddp") or "find_unused" in strategy:
        return strategy
    from lightning.pytorch.strategies import DDPStrategy

    start_method = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}.get(strategy)
    if start_method is None:
        return strategy
    return DDPStrategy(find_unused_parameters=True, start_method=start_method)


class IndiSeek(BaseModelClass):
    r"""IndiSeek: shared and modality-specific representations of two paired modalities.

    Stage 1 learns shared representations :math:`C_1, C_2` with CLIP; stage 2, with :math:`C` fixed, learns for
    each modality a specific representation :math:`Z_i` that is independent of the other modality's shared features
    (a CLUB upper bound on :math:`I(Z_i; C_{3-i})`) while :math:`(Z_i, C_i)` reconstructs :math:`X_i`.

    Parameters
    ----------
    mdata
        MuData registered with :meth:`setup_mudata`.
    n_shared
        Dimension of each shared representation.
    n_specific
        Dimension of each specific representation.
    n_hidden
        Width of the hidden layers.
    n_layers
        Linear layers per encoder and decoder (the paper: 5-layer ReLU MLPs of width 50).
    n_estimator_layers
        Linear layers of the CLUB estimator's mean and log-variance networks. The default of 2 (one hidden layer, as
        in Cheng et al., 2020) matters: the estimator is refitted on the same training cells all along, and a
        5-layer estimator memorises their ``c -> z`` pairs (on the simulated data its CLUB value ended at 82 on
        training cells against -0.5 on validation cells), so the encoder spends its steps chasing noise.
    dropout
        Dropout rate in the hidden layers of the shared and specific encoders while they train (0: the paper's
        networks, no dropout). It regularises the encoders on real samples: at the default ``lam``, ``dropout=0.2``
        raised the joint k-means ARI from 0.24 to 0.40 on the 600-cell bone-marrow file (seven seeds) and from 0.37
        to 0.76 on the 6,661-cell PBMC file (three seeds), and θ's rank agreement with the WNN weights with it
        (see the benchmarks page).
    lam
        :math:`\lambda`, the weight of the reconstruction term (paper eq. 2).
    objective
        Stage-2 objective, with everything else equal: ``"indiseek"`` (eq. 2), ``"indiseek_noswitch"`` (CLUB against
        the modality's own shared features, the paper's IndiSeek0), ``"factorcl"``, ``"infodisen"``, or ``"clip"``
        (the CLIP-only baseline: stage 1 only, no specific representations). See
        :class:`~indiseek.model.IndiSeekModule` for their terms.
    estimator
        CLUB estimator: ``"mlp"`` (mean and log-variance networks) or ``"moments"`` (linear-Gaussian, refitted in
        closed form before every encoder step).
    temperature
        Temperature of the InfoNCE completeness term of ``"factorcl"`` and ``"infodisen"``.
    standardize_specific
        Batch-normalise the specific representations (guards the CLUB min-max against scale inflation).
    encoder
        Encoder of sequence modalities (built by :func:`indiseek.data.from_arrays` from ``(n, T, d)`` arrays):
        ``"mlp"`` over the flattened steps, or ``"transformer"`` (:class:`~indiseek.nn.SequenceEncoder`, the
        paper's MultiBench encoder). Flat modalities always use MLPs.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
    >>> isk.pp.prepare(mdata, n_comps=20)
    >>> isk.IndiSeek.setup_mudata(mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr")
    >>> model = isk.IndiSeek(mdata, n_hidden=16, n_layers=2)
    >>> model.train(2, 2, enable_progress_bar=False)
    >>> model.get_latent_representation(modality="rna", kind="specific").shape
    (300, 50)
    """

    _module_cls = IndiSeekModule
    _training_plan_cls = IndiSeekTrainingPlan

    def __init__(
        self,
        mdata: MuData,
        n_shared: int = 50,
        n_specific: int = 50,
        n_hidden: int = 50,
        n_layers: int = 5,
        n_estimator_layers: int = 2,
        dropout: float = 0.0,
        lam: float = 10.0,
        objective: Literal["indiseek", "indiseek_noswitch", "factorcl", "infodisen", "clip"] = "indiseek",
        estimator: Literal["mlp", "moments"] = "mlp",
        temperature: float = 0.07,
        standardize_specific: bool = True,
        encoder: Literal["mlp", "transformer"] = "mlp",
    ):
        super().__init__(mdata)
        if not (np.isfinite(lam) and lam > 0):
            raise ValueError(f"`lam` must be a positive finite number, got {lam}.")
        for name, value in (
            ("n_shared", n_shared),
            ("n_specific", n_specific),
            ("n_hidden", n_hidden),
            ("n_layers", n_layers),
            ("n_estimator_layers", n_estimator_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        n_inputs = [self.summary_stats[f"n_{key}"] for key in _KEYS]
        sequence_shapes = tuple(self._sequence_spec(mdata, i, check=False) for i in range(2))
        if encoder == "transformer" and sequence_shapes == (None, None):
            raise ValueError(
                '`encoder="transformer"` encodes sequence modalities, and neither modality is one. Build sequences '
                'with `indiseek.data.from_arrays` from (n_samples, n_steps, n_features) arrays, or use `encoder="mlp"`.'
            )
        self.module = self._module_cls(
            *n_inputs,
            n_shared=n_shared,
            n_specific=n_specific,
            n_hidden=n_hidden,
            n_layers=n_layers,
            n_estimator_layers=n_estimator_layers,
            dropout=dropout,
            lam=lam,
            objective=objective,
            estimator=estimator,
            temperature=temperature,
            standardize_specific=standardize_specific,
            encoder=encoder,
            sequence_shapes=tuple(None if spec is None else spec[:2] for spec in sequence_shapes),
        )
        self._model_summary_string = (
            f"IndiSeek model ({objective}): modalities {self.modality_names[0]!r} ({n_inputs[0]} features) and "
            f"{self.modality_names[1]!r} ({n_inputs[1]} features); n_shared={n_shared}, n_specific={n_specific}, "
            f"n_hidden={n_hidden}, n_layers={n_layers}, dropout={dropout}, lam={lam}."
        )
        self.trained_stages_: list[str] = []
        self.input_features_ = self._input_features(mdata)
        self.init_params_ = self._get_init_params(locals())

    # ------------------------------------------------------------------------------------------------- setup
    @classmethod
    def setup_anndata(cls, *args, **kwargs):
        """Not available: IndiSeek needs two paired modalities; use :meth:`setup_mudata`."""
        raise NotImplementedError("IndiSeek works on MuData with two paired modalities: use `setup_mudata`.")

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        modalities: dict[str, str],
        x1_layer: str | None = None,
        x1_obsm_key: str | None = None,
        x2_layer: str | None = None,
        x2_obsm_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register which modalities, and which matrix of each, IndiSeek reads.

        Each modality is read from ``.X`` (the default), a layer, or an ``.obsm`` key of that modality, e.g. RNA as
        principal components (``x1_obsm_key="X_pca"``) and protein as centred CLR values (``x2_layer="clr"``), as
        :func:`indiseek.pp.prepare` writes them. Sparse and dense inputs are both accepted; nothing is written to
        the data except scvi-tools' registration keys in ``.uns``.

        Parameters
        ----------
        mdata
            MuData whose modalities hold the same cells in the same order.
        modalities
            ``{"x1": name, "x2": name}``: the names in ``mdata.mod`` of the two modalities.
        x1_layer, x2_layer
            Layer of each modality to read (``None``: ``.X``).
        x1_obsm_key, x2_obsm_key
            ``.obsm`` key of each modality to read instead of a layer.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.

        Examples
        --------
        >>> import indiseek as isk
        >>> mdata = isk.datasets.simulated_cite(n_cells=200, n_genes=100, seed=0)
        >>> isk.pp.prepare(mdata, n_comps=10)
        >>> isk.IndiSeek.setup_mudata(
        ...     mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr"
        ... )
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        if not isinstance(modalities, dict) or set(modalities) != set(_KEYS):
            raise ValueError(
                f'`modalities` must be a dict with keys "x1" and "x2", e.g. {{"x1": "rna", "x2": "prot"}}; '
                f"got {modalities!r}."
            )
        check_mudata(mdata, (modalities[X1_KEY], modalities[X2_KEY]))
        fields = []
        for key, layer, obsm_key in ((X1_KEY, x1_layer, x1_obsm_key), (X2_KEY, x2_layer, x2_obsm_key)):
            mod = mdata.mod[modalities[key]]
            if layer is not None and obsm_key is not None:
                raise ValueError(f"Give either `{key}_layer` or `{key}_obsm_key`, not both.")
            if obsm_key is not None:
                if obsm_key not in mod.obsm:
                    raise KeyError(
                        f"`.obsm[{obsm_key!r}]` is not in modality {modalities[key]!r}; it has "
                        f"{list(mod.obsm)}. Run `indiseek.pp.prepare(mdata)` or pass an existing key."
                    )
                fields.append(
                    MuDataObsmField(
                        key, obsm_key, mod_key=modalities[key], correct_data_format=False, mod_required=True
                    )
                )
            else:
                if SEQUENCE_KEY in mod.uns:  # a sequence from `indiseek.data.from_arrays`: its lengths give the mask
                    if LENGTH_KEY not in mod.obs:
                        raise KeyError(
                            f"Modality {modalities[key]!r} is a sequence but has no `.obs[{LENGTH_KEY!r}]` with the "
                            "valid length of each sequence; build it with `indiseek.data.from_arrays`."
                        )
                    fields.append(
                        MuDataNumericalObsField(
                            f"{key}_{LENGTH_KEY}", LENGTH_KEY, mod_key=modalities[key], mod_required=True
                        )
                    )
                if layer is not None and layer not in mod.layers:
                    raise KeyError(
                        f"Layer {layer!r} is not in modality {modalities[key]!r}; it has "
                        f"{list(mod.layers)}. Run `indiseek.pp.prepare(mdata)` or pass an existing layer."
                    )
                fields.append(
                    MuDataLayerField(
                        key,
                        layer,
                        mod_key=modalities[key],
                        is_count_data=False,
                        correct_data_format=False,
                        mod_required=True,
                    )
                )
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        fields_logger = logging.getLogger("scvi.data.fields")  # silences "Generating sequential column names"
        level = fields_logger.level
        fields_logger.setLevel(logging.WARNING)
        try:
            adata_manager.register_fields(mdata, **kwargs)
        finally:
            fields_logger.setLevel(level)
        cls.register_manager(adata_manager)

    @property
    def modality_names(self) -> tuple[str, str]:
        """Names of the two modalities in ``mdata.mod``, in the order ``(x1, x2)``."""
        modalities = self.registry_["setup_args"]["modalities"]
        return modalities[X1_KEY], modalities[X2_KEY]

    def _input_features(self, mdata: MuData) -> dict[str, dict]:
        """What identifies each modality's input space.

        Feature names; for ``.obsm`` inputs also a fingerprint of the PCA loadings that :func:`indiseek.pp.prepare`
        (scanpy) stores in ``varm["PCs"]``.
        """
        setup = self.registry_["setup_args"]
        out = {}
        for key, name in zip(_KEYS, self.modality_names, strict=True):
            mod = mdata.mod[name]
            obsm_key = setup[f"{key}_obsm_key"]
            if obsm_key is None:
                out[name] = {"var_names": list(map(str, mod.var_names))}
            else:
                loadings = mod.varm["PCs"] if obsm_key == "X_pca" and "PCs" in mod.varm else None
                out[name] = {
                    "obsm_key": obsm_key,
                    "var_names": list(map(str, mod.var_names)),
                    "loadings": None if loadings is None else np.asarray(loadings[:, :3], dtype=np.float64).copy(),
                }
        return out

    def _check_features(self, mdata: MuData, i: int) -> None:
        """Refuse a MuData whose modality ``i`` is not in the training data's input space."""
        name = self.modality_names[i]
        if name not in mdata.mod:
            raise KeyError(f"Modality {name!r} is not in the MuData; it has {list(mdata.mod)}.")
        trained, mod = self.input_features_[name], mdata.mod[name]
        names = list(map(str, mod.var_names))
        if "obsm_key" not in trained:
            if names != trained["var_names"]:
                same_set = set(names) == set(trained["var_names"])
                raise ValueError(
                    f"Modality {name!r} has {'its features in another order than' if same_set else 'other features than'}"
                    f" the training data ({len(names)} here, {len(trained['var_names'])} in training). Select them in "
                    f"the training order: `mdata.mod[{name!r}] = mdata[{name!r}][:, model.input_features_[{name!r}]"
                    '["var_names"]].copy()`, then `mdata.update()`.'
                )
            return
        loadings = trained["loadings"]
        if loadings is not None and trained["obsm_key"] == "X_pca" and "PCs" in mod.varm:
            new = np.asarray(mod.varm["PCs"][:, : loadings.shape[1]], dtype=np.float64)
            if (
                names != trained["var_names"]
                or new.shape != loadings.shape
                or not np.allclose(new, loadings, atol=1e-5)
            ):
                raise ValueError(
                    f"Modality {name!r}: `.obsm['X_pca']` of this MuData comes from another PCA than the training "
                    "data's, so its components mean something else. Prepare the new cells together with the training "
                    "cells (one `indiseek.pp.prepare` call) and train on a subset with `train_indices=`."
                )

    def _modality_index(self, modality: str | int) -> int:
        names = self.modality_names
        if modality in (0, 1):
            return int(modality)
        if modality in names:
            return names.index(modality)
        if modality in _KEYS:
            return _KEYS.index(modality)
        raise ValueError(f"Unknown modality {modality!r}; this model knows {names}.")

    # ------------------------------------------------------------------------------------------------- data
    def _sequence_spec(self, mdata: MuData | None, i: int, check: bool = True) -> tuple[int, int, str] | None:
        """``(n_steps, n_features, padding)`` of modality ``i`` if it is registered as a sequence, else ``None``."""
        mdata = self.adata if mdata is None else mdata
        key = _KEYS[i]
        if f"{key}_{LENGTH_KEY}" not in self.adata_manager.data_registry:
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
            values = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float32)
            x = np.hstack([values, step_indicators(lengths, spec[0], spec[2])])
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

    # ------------------------------------------------------------------------------------------------- training
    def train(
        self,
        max_epochs_shared: int | None = None,
        max_epochs_specific: int | None = None,
        *,
        lr: float = 1e-3,
        batch_size: int = 128,
        validation_size: float = 0.1,
        train_indices: np.ndarray | None = None,
        early_stopping: bool = True,
        early_stopping_patience: int = 20,
        n_estimator_steps: int = 5,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        strategy: str | pl.strategies.Strategy = "auto",
        seed: int | None = None,
        enable_progress_bar: bool = True,
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ) -> None:
        """Train stage 1 (CLIP) and then stage 2 (specific representations).

        The training cells (all, or ``train_indices``) are split once into a training and a validation part; both
        stages use that split and log their loss terms on it (``model.history``). Stage 1 stops early when its
        validation loss has not improved for ``early_stopping_patience`` epochs and ends with the weights of its
        best validation epoch: with few cells, CLIP memorises the training pairs within a few epochs. Stage 2 runs
        its epochs and keeps its last weights (its validation loss holds a moving min-max estimate, which is no
        guide to the best epoch).

        Parameters
        ----------
        max_epochs_shared, max_epochs_specific
            Epoch caps of the two stages (``None``: stage 1 up to 20,000 steps, 50 to 500 epochs, usually ended
            sooner by early stopping; stage 2 4,000 steps, 20 to 300 epochs). ``0`` skips a stage (e.g. to retrain
            only stage 2).
        lr
            Adam learning rate. The paper uses 1e-4 for 2,000 epochs; 1e-3 reaches the same kind of solution in
            far fewer steps.
        batch_size
            Cells per batch (the paper uses 128).
        validation_size
            Share of the training cells held out for validation and early stopping (``0``: none).
        train_indices
            Integer positions of the cells to train on (``None``: all). The others can be embedded afterwards.
        early_stopping
            Stop stage 1 when its validation loss stalls.
        early_stopping_patience
            Epochs without improvement before stopping.
        n_estimator_steps
            CLUB estimator steps, each on a fresh random batch, per encoder step of stage 2.
        accelerator, devices
            Passed to Lightning (``"cpu"``, ``"gpu"``, ...; number or list of devices).
        strategy
            Lightning strategy. For data-parallel training on several devices or CPU processes use ``"ddp"`` in a
            script (Lightning starts the other processes by re-running it) or ``"ddp_fork"`` in a notebook or an
            interactive session (forked processes; not with CUDA already initialised). Each stage trains only part
            of the networks, so these names are turned into a :class:`~lightning.pytorch.strategies.DDPStrategy`
            that finds unused parameters. The trained weights end up in this model, as with one device. scvi-tools
            turns early stopping off under DDP, so give stage 1 an epoch cap.
        seed
            Seed of the split, the batch order and the estimator batches (``None``: ``scvi.settings.seed``).
        enable_progress_bar
            Show a progress bar with the loss terms.
        plan_kwargs
            Extra keyword arguments of :class:`~indiseek.model.IndiSeekTrainingPlan` (``estimator_lr``,
            ``weight_decay``).
        **trainer_kwargs
            Passed to :class:`scvi.train.Trainer` (and Lightning's ``Trainer``).

        Examples
        --------
        >>> import indiseek as isk
        >>> mdata = isk.datasets.simulated_cite(n_cells=300, n_genes=200, seed=0)
        >>> isk.pp.prepare(mdata, n_comps=20)
        >>> isk.IndiSeek.setup_mudata(
        ...     mdata, modalities={"x1": "rna", "x2": "prot"}, x1_obsm_key="X_pca", x2_layer="clr"
        ... )
        >>> model = isk.IndiSeek(mdata, n_hidden=16, n_layers=2)
        >>> model.train(3, 3, seed=0, enable_progress_bar=False)
        >>> sorted(model.history)[:2]
        ['club_prot_train', 'club_prot_validation']
        """
        seed = settings.seed if seed is None else seed
        if seed is not None:
            pl.seed_everything(seed, verbose=False)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 2:
            raise ValueError(
                f"`batch_size` must be an integer of at least 2 (contrastive losses need pairs), got {batch_size!r}."
            )
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"`lr` must be a positive finite number, got {lr}.")
        if not 0 <= validation_size < 1:
            raise ValueError(f"`validation_size` must be in [0, 1), got {validation_size}.")
        x1, x2 = self._training_tensors()
        cells = np.arange(self.adata.n_obs) if train_indices is None else np.asarray(train_indices, dtype=int)
        if cells.size and (cells.min() < 0 or cells.max() >= self.adata.n_obs):
            raise IndexError(f"`train_indices` must be positions in [0, {self.adata.n_obs}).")
        rng = np.random.default_rng(seed)
        cells = rng.permutation(cells)
        n_val = int(round(validation_size * len(cells)))
        n_train = len(cells) - n_val
        if n_train < 16 or (validation_size > 0 and n_val < 2):
            raise ValueError(
                f"Too few cells to train: {len(cells)} cells give {n_train} training and {n_val} validation cells. "
                "IndiSeek needs at least 16 training cells and, with `validation_size > 0`, 2 validation cells; "
                "use more cells or `validation_size=0`."
            )
        if n_train < batch_size:
            raise ValueError(
                f"Too few training cells ({n_train}) for `batch_size={batch_size}`: every batch would be the whole "
                f"training set. Pass a smaller `batch_size` (e.g. {max(2, n_train // 4)})."
            )
        train_idx, val_idx = np.sort(cells[n_val:]), np.sort(cells[:n_val])
        early_stopping = early_stopping and n_val > 0
        self.module.set_input_scale(x1[train_idx], x2[train_idx], self.modality_names)

        history: dict[str, pd.DataFrame] = {}
        epochs = {"shared": max_epochs_shared, "specific": max_epochs_specific}
        interrupt = StopOnInterrupt()
        user_callbacks = list(trainer_kwargs.pop("callbacks", None) or [])
        stages = ("shared", "specific") if self.module.has_specific else ("shared",)
        for stage in stages:
            n_epochs = _default_epochs(n_train, batch_size, stage) if epochs[stage] is None else int(epochs[stage])
            if n_epochs == 0:
                continue
            tensors = {"x1": x1, "x2": x2}
            if stage == "specific":  # the shared features are fixed in stage 2: compute them once
                tensors.update(c1=self._encode(x1, 0, "shared"), c2=self._encode(x2, 1, "shared"))
            data = InMemoryDataSplitter(
                tensors,
                train_idx,
                val_idx,
                batch_size=batch_size,
                steps_per_batch=_STAGE1_STEPS_PER_BATCH if stage == "shared" else 1,
                n_estimator_batches=n_estimator_steps if stage == "specific" and len(self.module.estimators) else 0,
                seed=seed or 0,
            )
            plan = self._training_plan_cls(
                self.module,
                stage=stage,
                lr=lr,
                n_estimator_steps=n_estimator_steps,
                modality_names=self.modality_names,
                batch_size=batch_size,
                **(plan_kwargs or {}),
            )
            self.is_trained_ = False  # each stage's history is kept whole, not appended to the other's
            self.module.train()
            runner = TrainRunner(
                self,
                training_plan=plan,
                data_splitter=data,
                max_epochs=n_epochs,
                accelerator=accelerator,
                devices=devices,
                strategy=_strategy(strategy),
                early_stopping=early_stopping and stage == "shared",
                early_stopping_monitor=plan.monitor,
                early_stopping_patience=early_stopping_patience,
                check_val_every_n_epoch=1 if n_val else None,
                enable_progress_bar=enable_progress_bar,
                callbacks=[*user_callbacks, interrupt],  # a new list per stage: scvi's Trainer appends to it
                **{"log_every_n_steps": 1, **trainer_kwargs},
            )
            with interrupt.catching():
                runner()
            history.update(self.history_ or {})
            if stage not in self.trained_stages_:
                self.trained_stages_.append(stage)
            if interrupt.requested:
                n_done = len(history.get(f"{stage}_loss_train", []))
                warnings.warn(
                    f"Training was interrupted in the {stage} stage after {n_done} epoch(s); the model keeps what was "
                    "trained so far and later stages were skipped. Call `model.train()` again to continue (e.g. "
                    "`model.train(0, None)` to train stage 2 only).",
                    UserWarning,
                    stacklevel=settings.warnings_stacklevel,
                )
                break
        self.history_ = history
        self.is_trained_ = stages[-1] in self.trained_stages_
        self.module.eval()

    # ------------------------------------------------------------------------------------------------- inference
    def _batches(self, x, batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, x.shape[0], batch_size):
            yield self._dense(x, np.arange(start, min(start + batch_size, x.shape[0])))

    @torch.no_grad()
    def _encode(self, x, i: int, kind: str, batch_size: int = 4096) -> torch.Tensor:
        """Representation ``kind`` of modality ``i`` for the rows of ``x`` (array or tensor), in evaluation mode."""
        was_training = self.module.training
        self.module.eval()
        encode = self.module.shared if kind == "shared" else self.module.specific
        device = self.device
        out = [encode(b.to(device), i).cpu() for b in self._batches(x, batch_size)]
        self.module.train(was_training)
        return torch.cat(out) if out else torch.zeros((0, 0))

    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: MuData | None = None,
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
            MuData with the same modalities and features as the training data (``None``: the training MuData).
            New data is registered with the training data's setup; a different number of features is refused.
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
        needed = ["shared"] if kind == "shared" else ["shared", "specific"]
        missing = [s for s in needed if s not in self.trained_stages_]
        if missing:
            raise RuntimeError(f"The {missing[0]} stage has not been trained yet: call `model.train()` first.")
        i = self._modality_index(modality)
        if adata is not None and adata is not self.adata:
            self._check_features(adata, i)
        x = self._matrix(adata, _KEYS[i])
        check_finite(x, f"The input of modality {self.modality_names[i]!r}")
        if indices is not None:
            x = x[np.asarray(indices)]
        self.module.eval()
        return self._encode(x, i, kind, batch_size).numpy()
