import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import indiseek as isk

#: Real CITE-seq files: ``../shared/data`` beside the repository (as in CI), or ``$INDISEEK_SHARED_DATA``.
SHARED_DATA = Path(os.environ.get("INDISEEK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
logging.getLogger("lightning.fabric").setLevel(logging.ERROR)

QUIET = {"enable_progress_bar": False}


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the tests read the real CITE-seq files from ../shared/data beside the repository, "
            "or from the folder named by $INDISEEK_SHARED_DATA."
        )
    return path


@pytest.fixture(scope="session")
def simulated():
    """Simulated CITE-seq data, preprocessed, with a fixed train / held-out split of the cells."""
    mdata = isk.datasets.simulated_cite(n_cells=2000, seed=1)
    isk.pp.prepare(mdata, n_comps=50)
    held_out = np.random.default_rng(0).permutation(mdata.n_obs)[:500]
    train = np.setdiff1d(np.arange(mdata.n_obs), held_out)
    return mdata, train, np.sort(held_out)


@pytest.fixture(scope="session")
def trained(simulated):
    """IndiSeek trained with the default settings on the training cells of the simulated data."""
    mdata, train, held_out = simulated
    mdata = mdata.copy()
    model = isk.tl.fit(mdata, train_indices=train, max_epochs_specific=150, seed=0, **QUIET)
    return model, mdata, train, held_out


@pytest.fixture
def tiny():
    """A small preprocessed MuData for fast API tests."""
    mdata = isk.datasets.simulated_cite(n_cells=240, n_genes=120, seed=3)
    isk.pp.prepare(mdata, n_comps=15)
    return mdata
