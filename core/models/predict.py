"""Face crops → per-class probabilities for one or more models, all faces in one batch."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx

from core.models.preprocess import spec, to_tensor
from core.models.registry import LoadedModel


def calibrated_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / temperature) over the classes: the one place a model's outputs become probabilities."""
    return torch.softmax(logits / temperature, dim=1)


@torch.inference_mode()
def predict_proba(model: LoadedModel, crops: np.ndarray, flip_tta: bool = False) -> np.ndarray:
    """Calibrated probabilities (N, 7) for uint8 crops (N, 48, 48): softmax(logits / the model's
    temperature); flip_tta averages with the mirrored face."""
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    if len(crops) == 0:
        return np.zeros((0, 7), dtype=np.float32)
    inputs = to_tensor(crops, model.preprocessing)
    # The lock keeps a forward pass out of a Grad-CAM that another thread has hooked into this model.
    with model.lock:
        probabilities = calibrated_softmax(model.module(inputs), model.temperature)
        if flip_tta:
            mirrored = calibrated_softmax(model.module(inputs.flip(-1)), model.temperature)
            probabilities = (probabilities + mirrored) / 2
    return probabilities.numpy()


def predict_many(
    models: list[LoadedModel], crops: np.ndarray, flip_tta: bool = False
) -> dict[str, np.ndarray]:
    """{model name: probabilities (N, 7)} for every model on the same crops."""
    return {model.name: predict_proba(model, crops, flip_tta) for model in models}


# A loaded model's module → its copy, or None where the model serves as it is (no strong reference
# back to the key, so a model that is let go takes its copy with it).
_copies: weakref.WeakKeyDictionary[torch.nn.Module, LoadedModel | None] = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()


def inference_copy(model: LoadedModel) -> LoadedModel:
    """A copy of a classifier for predictions only, its batch norms folded into the convolutions
    (torch.fx) and its weights channels-last (PyTorch's CPU pooling is much faster so): about a
    quarter less time per face, same probabilities to float precision.

    The original stays as it is for Grad-CAM, which hooks into its layers. A model that torch.fx
    cannot trace, or whose copy does not give the same outputs, is returned unchanged. One copy per
    loaded model, made on first use and kept while the model lives: every video and live stream of
    the app shares it (a copy costs a trace and a check, and the model's size again). Loaded models'
    weights never change, so a copy never goes stale.
    """
    with _copies_lock:
        if model.module not in _copies:
            made = _make_inference_copy(model)
            _copies[model.module] = None if made is model else made
        found = _copies[model.module]
    return model if found is None else found


def _make_inference_copy(model: LoadedModel) -> LoadedModel:
    from torch.fx.experimental.optimization import fuse

    size = int(spec(model.preprocessing)["input_size"])
    probe = torch.linspace(-1, 1, 2 * size * size).reshape(2, 1, size, size)
    try:
        # Under the model's lock: a Grad-CAM's hooks on the original must not see the check's pass.
        with model.lock:
            graph = _ThisThreadTracer().trace(model.module)
            traced = torch.fx.GraphModule(model.module, graph, type(model.module).__name__)
            fused = fuse(traced, no_trace=True).to(memory_format=torch.channels_last)
            with torch.inference_mode():
                same = torch.allclose(fused(probe), model.module(probe), atol=1e-4, rtol=1e-4)
    except Exception:  # noqa: BLE001 - any architecture fx cannot handle keeps its eager module
        return model
    return LoadedModel(model.name, fused, model.card) if same else model


class _ThisThreadTracer(torch.fx.Tracer):
    """torch.fx's tracer, for the thread that traces only.

    While it traces, torch.fx replaces every nn.Module's __call__ and __getattr__, in every thread:
    another thread's forward pass (a live stream's classifier, MTCNN) then fails with "module is not
    installed as a submodule". Here calls from other threads run the module as usual.
    """

    def __init__(self) -> None:
        super().__init__()
        self._thread = threading.get_ident()

    def call_module(
        self, m: torch.nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if threading.get_ident() != self._thread:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if threading.get_ident() != self._thread:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)
