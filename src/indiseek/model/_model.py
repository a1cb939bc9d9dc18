"""The IndiSeek model: an scvi-tools model class over MuData."""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
from mudata import MuData
from scvi import settings
from scvi.data import AnnDataManager
from scvi.model.base import BaseModelClass

from indiseek._constants import STAGES, X1_KEY, X2_KEY
from indiseek._inputs import input_spec
from indiseek._validation import check_mudata

from ._data import split_cells
from ._explained import joint_weights
from ._fingerprint import input_fingerprint
from ._inference import ModelInference
from ._inputs import ModelInputs
from ._lambda import LAMBDA_PATH
from ._module import IndiSeekModule
from ._preprocessing import recorded_preprocessing
from ._presets import preset_settings
from ._setup import (
    batch_fields,
    check_batch_sizes,
    check_model_options,
    check_schedule,
    modality_fields,
    register_quietly,
)
from ._stages import StageTraining, lightning_messages_once
from ._trainingplan import IndiSeekTrainingPlan, default_epochs

_KEYS = (X1_KEY, X2_KEY)


class IndiSeek(ModelInputs, ModelInference, StageTraining, BaseModelClass):
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
        Width of the hidden layers (``None``: from ``preset``, 50 in both).
    n_layers
        Linear layers per encoder and decoder (``None``: from ``preset``; the paper's networks have 5).
    n_estimator_layers
        Linear layers of the CLUB estimator's mean and log-variance networks (2: one hidden layer, as in Cheng et
        al., 2020). A deeper estimator can memorise the training cells' ``c -> z`` pairs, which it is refitted on
        all along (:ref:`club-depth` has the measurement).
    dropout
        Dropout rate in the hidden layers of the shared and specific encoders while they train (``None``: from
        ``preset``; 0 is the paper's networks).
    input_dropout
        Share of each cell's input features masked at random (set to zero, the others scaled up as dropout does)
        before the shared encoders while CLIP trains: an augmentation of the pairs that keeps the shared features
        from resting on a few input features on small samples. Stage 2 and the representations see whole inputs
        (``None``: from ``preset``; 0 is the paper's setting; :ref:`defaults` has the study behind the default).
    lam
        :math:`\lambda`, the weight of the reconstruction term (paper eq. 2), or ``"auto"``: chosen without labels
        on the validation cells, as the knee of a warm-started path of stage-2 fits between reconstruction error
        and the specific features' leakage of the other modality's shared features (:ref:`lam-auto` states the
        rule; the path is kept in ``model.lambda_path_``). ``None``: from ``preset``.
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
        ``"within_batch"`` (with ``batch_key``): standardise each batch by its own moments, which removes every
        difference between the batches' means and variances from the specific representations, including those
        that come from different cell-type proportions; suited to batches that hold the same populations
        (:ref:`batch-correction`). Cells of a batch the model has not seen are standardised by the
        moments of the training cells' mixture of batches.
    encoder
        Encoder of sequence modalities (built by :func:`indiseek.data.from_arrays` from ``(n, T, d)`` arrays):
        ``"mlp"`` over the flattened steps, or ``"transformer"`` (:class:`~indiseek.nn.SequenceEncoder`, the
        paper's MultiBench encoder). Flat modalities always use MLPs.
    preset
        Where ``n_hidden``, ``n_layers``, ``dropout``, ``input_dropout`` and ``lam`` come from when not given.
        ``"auto"``: networks that grow with the number of cells registered (2 layers below 2,000 cells and 3 below
        10,000, both with dropout 0.2, and ``input_dropout=0.5`` below 2,000 cells only; from 10,000 cells the
        paper's 5 layers without dropout) and ``lam="auto"``. ``"paper"``: the paper's 5-layer networks of width 50
        without dropout and :math:`\lambda` = 10. The rule and the evidence behind it: :ref:`defaults`.
    batch_weight
        With a batch covariate (``setup_mudata(batch_key=...)``): the weight of the terms that remove the batch from
        the shared and specific representations (:math:`\beta` of :class:`~indiseek.model.IndiSeekModule`; the
        study behind the default: :ref:`batch-correction`). Ignored without one.
    batch_estimator
        With a batch covariate: the estimator of the batch terms' :math:`q(b \mid \cdot)`, ``"mlp"`` (a classifier
        fitted in alternation) or ``"moments"`` (closed-form Gaussian moments per batch); see
        :class:`~indiseek.model.IndiSeekModule`.
    encode_batch
        With a batch covariate: give the specific encoders the batch too (as scVI's ``encode_covariates``), so that
        they can cancel what the batch shifts in the input. A query's cells are encoded in their own batch where the
        reference has seen it (``obs[batch_key]``), else at the training cells' batch frequencies. Ignored without
        one.
    erase_batch
        With a batch covariate: once stage 1 ends, remove from each shared representation the directions in which
        the training cells' batches differ on average (:class:`~indiseek.nn.LinearErasure`, at most one direction
        per batch after the first), so that no linear function of the shared features tells the batches apart.
        The map is the same for every cell, so it applies to queries from any batch. Where the batches hold the
        cell types in different proportions, the erased directions also carry some of the types' differences
        (:ref:`batch-correction`). Ignored without one.
    dependence_without_dropout
        With ``dropout`` > 0: stage 2 measures the dependence of the specific representations on the other
        modality's shared ones (and on the batch) on a pass of the specific encoders without dropout, so that
        dropout's noise cannot hide it from the CLUB estimator; the reconstruction still trains with dropout. Not
        the default; what it changes on simulated and real data: :ref:`simulated-defaults`.

    Attributes
    ----------
    explained_variance_
        After training (objectives with decoders): a table with one row per modality, giving the share of its
        variance on the validation cells that the decoder reconstructs from both representations (``total``), from
        the shared ones alone, with the specific ones averaged out (``shared``), and the difference that the
        specific ones add (``specific``).
    joint_weights_
        The weights of the blocks of ``X_indiseek`` (shared x1, shared x2, specific x1, specific x2). Each block is
        scaled to a total variance of 1 on the training cells, then multiplied by the square root of its share in
        ``explained_variance_``, so the joint representation's variance divides as the model explains the data.
    lambda_path_
        With ``lam="auto"``: the path that :math:`\lambda` was chosen on (``lam``, ``reconstruction``, ``leakage``,
        ``chosen``).

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
        n_hidden: int | None = None,
        n_layers: int | None = None,
        n_estimator_layers: int = 2,
        dropout: float | None = None,
        input_dropout: float | None = None,
        lam: float | Literal["auto"] | None = None,
        objective: Literal["indiseek", "indiseek_noswitch", "factorcl", "infodisen", "clip"] = "indiseek",
        estimator: Literal["mlp", "moments"] = "mlp",
        temperature: float = 0.07,
        standardize_specific: bool | Literal["within_batch"] = True,
        encoder: Literal["mlp", "transformer"] = "mlp",
        preset: Literal["auto", "paper"] = "auto",
        batch_weight: float = 1.0,
        batch_estimator: Literal["mlp", "moments"] = "mlp",
        encode_batch: bool = True,
        erase_batch: bool = False,
        dependence_without_dropout: bool = False,
    ):
        super().__init__(mdata)
        settings_ = preset_settings(preset, mdata.n_obs)
        n_hidden = settings_["n_hidden"] if n_hidden is None else n_hidden
        n_layers = settings_["n_layers"] if n_layers is None else n_layers
        dropout = settings_["dropout"] if dropout is None else dropout
        input_dropout = settings_["input_dropout"] if input_dropout is None else input_dropout
        lam = settings_["lam"] if lam is None else lam
        self.lam_auto_ = isinstance(lam, str) and lam == "auto"
        check_model_options(
            lam,
            batch_weight,
            n_shared=n_shared,
            n_specific=n_specific,
            n_hidden=n_hidden,
            n_layers=n_layers,
            n_estimator_layers=n_estimator_layers,
        )
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
            input_dropout=input_dropout,
            lam=LAMBDA_PATH[0] if self.lam_auto_ else lam,
            objective=objective,
            estimator=estimator,
            temperature=temperature,
            standardize_specific=standardize_specific,
            encoder=encoder,
            sequence_shapes=tuple(None if spec is None else spec[:2] for spec in sequence_shapes),
            modality_names=self.modality_names,
            n_batch=len(self.batch_names or []),
            batch_weight=batch_weight,
            batch_estimator=batch_estimator,
            encode_batch=encode_batch,
            erase_batch=erase_batch,
            dependence_without_dropout=dependence_without_dropout,
        )
        self._model_summary_string = (
            f"IndiSeek model ({objective}): modalities {self.modality_names[0]!r} ({n_inputs[0]} features) and "
            f"{self.modality_names[1]!r} ({n_inputs[1]} features); n_shared={n_shared}, n_specific={n_specific}, "
            f"n_hidden={n_hidden}, n_layers={n_layers}, dropout={dropout}, input_dropout={input_dropout}, lam={lam}"
            + (f"; {len(self.batch_names)} batches." if self.batch_names else ".")
        )
        self.trained_stages_: list[str] = []
        self._record_inputs(mdata)
        self.init_params_ = self._get_init_params(locals())

    def _record_inputs(self, mdata: MuData) -> None:
        """Record what each modality's input is and how it was prepared, to check and prepare queries with."""
        setup = self.registry_["setup_args"]
        self.input_features_ = {
            name: input_fingerprint(mdata.mod[name], setup[f"{key}_obsm_key"])
            for key, name in zip(_KEYS, self.modality_names, strict=True)
        }
        inputs = {
            name: input_spec(setup[f"{key}_layer"], setup[f"{key}_obsm_key"])
            for key, name in zip(_KEYS, self.modality_names, strict=True)
        }
        self.preprocessing_ = recorded_preprocessing(mdata, self.modality_names, inputs)

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
        batch_key: str | None = None,
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
        batch_key
            Column of ``mdata.obs`` with the batch (sample, donor, run) of each cell: a covariate whose information
            the representations are trained to drop (see :class:`~indiseek.model.IndiSeekModule`). scvi-tools
            records its codes in ``mdata.obs["_scvi_batch"]``. ``None``: no batch covariate.
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
        sources = {X1_KEY: (x1_layer, x1_obsm_key), X2_KEY: (x2_layer, x2_obsm_key)}
        fields = [f for key in _KEYS for f in modality_fields(mdata, key, modalities[key], *sources[key])]
        fields += batch_fields(mdata, batch_key)
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        register_quietly(adata_manager, mdata, **kwargs)
        cls.register_manager(adata_manager)

    @property
    def modality_names(self) -> tuple[str, str]:
        """Names of the two modalities in ``mdata.mod``, in the order ``(x1, x2)``."""
        modalities = self.registry_["setup_args"]["modalities"]
        return modalities[X1_KEY], modalities[X2_KEY]

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
        checkpoint_dir: str | None = None,
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
            Lightning strategy: ``"ddp"`` in a script, ``"ddp_fork"`` in a notebook (not with CUDA initialised) for
            data-parallel training; these become a ``DDPStrategy`` that finds unused parameters (each stage trains
            part of the networks). scvi-tools turns early stopping off under DDP: give stage 1 an epoch cap.
        seed
            Seed of the split, the batch order and the estimator batches (``None``: ``scvi.settings.seed``).
        enable_progress_bar
            Show a progress bar with the loss terms.
        checkpoint_dir
            Folder to save the model in after each stage (:meth:`save`, without the data), so that a long run
            interrupted in stage 2 keeps stage 1: ``IndiSeek.load(checkpoint_dir, adata=mdata)`` and
            ``model.train(0, None)`` train stage 2 only (``indiseek.tl.fit(..., resume_from=checkpoint_dir)`` does
            both).
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
        check_schedule(lr, batch_size, validation_size)
        train_idx, val_idx = split_cells(self.adata.n_obs, train_indices, validation_size, batch_size, seed)
        if self.lam_auto_ and max_epochs_specific != 0 and len(val_idx) == 0:
            raise ValueError(
                '`lam="auto"` chooses lambda on the validation cells, and `validation_size=0` leaves none: set '
                "`validation_size` > 0, or create the model with a fixed `lam` (e.g. `lam=10`, the paper's) to "
                "train on all cells."
            )
        if seed is not None:
            pl.seed_everything(seed, verbose=False)
        x1, x2 = self._training_tensors()
        batch = self._batch_onehot()
        if batch is not None:
            check_batch_sizes(batch[train_idx].argmax(dim=1).numpy(), self.batch_names, batch_size)
            self.module.set_batch_prior(batch[train_idx])
        self.module.set_input_scale(x1[train_idx], x2[train_idx])
        plan_kwargs = {
            "lr": lr,
            "batch_size": batch_size,
            "n_estimator_steps": n_estimator_steps,
            **(plan_kwargs or {}),
        }
        runner_kwargs = {
            "accelerator": accelerator,
            "devices": devices,
            "strategy": strategy,
            "early_stopping": early_stopping and len(val_idx) > 0,
            "early_stopping_patience": early_stopping_patience,
            "check_val_every_n_epoch": 1 if len(val_idx) else None,
            "enable_progress_bar": enable_progress_bar,
            **trainer_kwargs,
        }
        history: dict[str, pd.DataFrame] = {}
        stages = STAGES if self.module.has_specific else STAGES[:1]
        with lightning_messages_once():  # one train call runs up to seven trainers
            for stage, max_epochs in zip(stages, (max_epochs_shared, max_epochs_specific)[: len(stages)], strict=True):
                n_epochs = default_epochs(len(train_idx), batch_size, stage) if max_epochs is None else int(max_epochs)
                if n_epochs == 0:
                    continue
                tensors = {"x1": x1, "x2": x2, **({} if batch is None else {"batch": batch})}
                if stage == "specific":  # the shared features are fixed in stage 2: compute them once
                    tensors.update(c1=self._encode(x1, 0, "shared"), c2=self._encode(x2, 1, "shared"))
                split = {"train_idx": train_idx, "val_idx": val_idx, "seed": seed or 0}
                if stage == "specific" and self.lam_auto_:
                    interrupted = self._train_lambda_path(tensors, split, n_epochs, plan_kwargs, runner_kwargs)
                else:
                    interrupted = self._train_stage(stage, tensors, split, n_epochs, plan_kwargs, runner_kwargs)
                history.update(self.history_ or {})
                if interrupted:
                    break
                if checkpoint_dir is not None:
                    self.history_ = history
                    self.save(str(checkpoint_dir), overwrite=True, save_anndata=False)
        self.history_ = history
        self.is_trained_ = stages[-1] in self.trained_stages_
        if self.is_trained_ and self.module.has_specific:
            self.joint_weights_, shares = joint_weights(self, (x1, x2), train_idx, val_idx, batch)
            self.explained_variance_ = pd.DataFrame(shares).T if shares else None
        self.module.eval()
