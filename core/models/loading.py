"""The one factory for models by name: a registered model, or the average of registered ones ("A+B").

Kept apart from the registry so that the registry knows nothing of averages and the ensemble
builds on the registry, never the other way round.
"""

from __future__ import annotations

from core.models.ensemble import is_ensemble_name, load_ensemble
from core.models.registry import LoadedModel, is_registered, load_registered


def load_model(name: str) -> LoadedModel:
    """A model by registry name or file path; "baseline+masked" that is no file gives the average of
    those models (core.models.ensemble).

    ModelNotFound when there is no such model; ModelLoadError, naming the model and the cause,
    when its card or weights cannot be used.
    """
    if is_ensemble_name(name) and not is_registered(name):
        return load_ensemble(name)
    return load_registered(name)
