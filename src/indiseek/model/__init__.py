"""The IndiSeek scvi-tools model, its module and its training plan."""

from ._data import InMemoryDataSplitter
from ._model import IndiSeek
from ._module import IndiSeekModule
from ._trainingplan import IndiSeekTrainingPlan, NonFiniteLossError, fit_estimators, specific_step

__all__ = [
    "IndiSeek",
    "IndiSeekModule",
    "IndiSeekTrainingPlan",
    "InMemoryDataSplitter",
    "NonFiniteLossError",
    "fit_estimators",
    "specific_step",
]
