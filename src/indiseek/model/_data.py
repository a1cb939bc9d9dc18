"""In-memory data for training: dense tensors, batches sampled by index."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from indiseek._validation import check_train_indices


class _PairedRows(Dataset):
    """Rows of named, row-aligned tensors; a list of indices is fetched in one indexing operation per tensor.

    With ``n_estimator_batches > 0`` every fetched batch also carries that many extra batches of the same size drawn
    uniformly from all rows (``<name>_est`` of shape ``(k, batch, d)``): the fresh batches on which the CLUB
    estimator is fitted between encoder steps.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], n_estimator_batches: int = 0, seed: int = 0):
        self.tensors = tensors
        self.n_rows = next(iter(tensors.values())).shape[0]
        self.n_estimator_batches = n_estimator_batches
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n_rows

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices)
        batch = {name: t[idx] for name, t in self.tensors.items()}
        if self.n_estimator_batches:
            extra = torch.randint(self.n_rows, (self.n_estimator_batches, len(indices)), generator=self.generator)
            batch.update({f"{name}_est": t[extra] for name, t in self.tensors.items()})
        return batch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def split_cells(
    n_obs: int, train_indices, validation_size: float, batch_size: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation positions: the cells to train on (all, or ``train_indices``), split at random."""
    cells = check_train_indices(n_obs, train_indices)
    cells = np.random.default_rng(seed).permutation(cells)
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
    return np.sort(cells[n_val:]), np.sort(cells[:n_val])


def _as_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


class InMemoryDataSplitter(pl.LightningDataModule):
    """Training and validation batches from dense, row-aligned tensors held in memory.

    Batches are sampled by index from the tensors (no per-batch AnnData access, no worker processes), which keeps
    the per-epoch cost close to that of a plain PyTorch loop. The training batch order is reshuffled every epoch.

    Parameters
    ----------
    tensors
        Dense ``float32`` tensors of all cells by name (``"x1"``, ``"x2"``, and in stage 2 the fixed shared
        features ``"c1"``, ``"c2"``), all with one row per cell.
    train_idx, val_idx
        Row indices of the training and validation cells.
    batch_size
        Cells per batch (per optimiser step).
    steps_per_batch
        Consecutive batches of the shuffled order handed over together (the training plan steps through them); the
        optimisation is the same as with one batch at a time.
    n_estimator_batches
        Extra random training batches attached to each training batch (for the CLUB estimator's steps).
    seed
        Seed of the estimator batches.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        *,
        batch_size: int = 128,
        steps_per_batch: int = 1,
        n_estimator_batches: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.tensors = tensors
        self.train_idx = np.asarray(train_idx)
        self.val_idx = np.asarray(val_idx)
        self.test_idx = np.array([], dtype=int)
        self.n_train, self.n_val = len(self.train_idx), len(self.val_idx)
        self.batch_size = batch_size
        self.steps_per_batch = steps_per_batch
        if steps_per_batch > 1 and n_estimator_batches:
            raise ValueError("Estimator batches are drawn per optimiser step: use `steps_per_batch=1` with them.")
        self.n_estimator_batches = n_estimator_batches
        self.seed = seed

    def _rows(self, idx: np.ndarray, n_estimator_batches: int = 0) -> _PairedRows:
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return _PairedRows({k: v[idx_t] for k, v in self.tensors.items()}, n_estimator_batches, self.seed)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches; a last batch of a single cell is dropped (batch statistics need two).

        With ``steps_per_batch > 1``, each loader batch holds that many consecutive batches (the plan drops a
        single-cell remainder).
        """
        rows = self._rows(self.train_idx, self.n_estimator_batches)
        drop_last = self.steps_per_batch == 1 and self.n_train % self.batch_size == 1
        return DataLoader(
            rows,
            batch_size=self.batch_size * self.steps_per_batch,
            shuffle=True,
            drop_last=drop_last,
            collate_fn=_as_batch,
        )

    def transfer_batch_to_device(self, batch: dict[str, torch.Tensor], device: torch.device, dataloader_idx: int):
        """Move a batch (a flat dict of tensors) to the device, without Lightning's generic collection walk."""
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def val_dataloader(self) -> DataLoader | list:
        """Validation batches in order (an empty list when there is no validation split)."""
        if self.n_val == 0:
            return []
        return DataLoader(self._rows(self.val_idx), batch_size=self.batch_size, shuffle=False, collate_fn=_as_batch)
