"""Registry: save → list → load round trip, tensors-only weights, clear errors."""

from __future__ import annotations

import gc
import json
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from core.labels import EMOTIONS
from core.models.architectures import architectures, create_model
from core.models.loading import load_model
from core.models.predict import inference_copy, predict_proba
from core.models.registry import LoadedModel, ModelNotFound, list_models, save_model


def test_round_trip_gives_identical_predictions(isolated_home: Path) -> None:
    torch.manual_seed(1)
    model = create_model("vgg", widths=[8, 16]).eval()
    path = save_model(
        model, {"architecture": "vgg", "arch_args": {"widths": [8, 16]}, "scheme": "baseline"}, "roundtrip"
    )
    assert path.parent == isolated_home / "models"
    torch.load(path, weights_only=True)  # tensors only
    loaded = load_model("roundtrip")
    crops = np.random.default_rng(0).integers(0, 255, (3, 48, 48)).astype(np.uint8)
    with torch.inference_mode():
        expected = torch.softmax(
            model(torch.tensor(crops[:, None] / 255.0 - 0.5, dtype=torch.float32) / 0.5), 1
        )
    assert np.allclose(predict_proba(loaded, crops), expected.numpy(), atol=1e-5)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["classes"] == list(EMOTIONS) and card["preprocessing"]["input_size"] == 48
    assert [c["name"] for c in list_models() if c["name"] == "roundtrip"] == ["roundtrip"]


def test_unknown_model_and_architecture_errors(tiny_registry: list[str]) -> None:
    with pytest.raises(ModelNotFound, match="no model named 'nope'.*tiny_a"):
        load_model("nope")
    with pytest.raises(ValueError, match="unknown architecture 'alexnet'.*resnet18"):
        create_model("alexnet")


def test_card_with_other_class_order_is_refused(tiny_registry: list[str], isolated_home: Path) -> None:
    card_path = isolated_home / "models" / "tiny_a.json"
    card = json.loads(card_path.read_text())
    card["classes"] = list(reversed(EMOTIONS))
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="class order"):
        load_model("tiny_a")


@pytest.mark.parametrize("name", architectures())
def test_every_architecture_gives_seven_outputs(name: str) -> None:
    model = create_model(name).eval()
    with torch.inference_mode():
        assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
        assert model(torch.zeros(1, 1, 40, 40)).shape == (1, 7)


def test_flip_tta_averages_with_the_mirror(tiny_registry: list[str]) -> None:
    model = load_model("tiny_a")
    crop = np.random.default_rng(3).integers(0, 255, (1, 48, 48)).astype(np.uint8)
    plain, mirrored = predict_proba(model, crop), predict_proba(model, crop[:, :, ::-1].copy())
    assert np.allclose(predict_proba(model, crop, flip_tta=True), (plain + mirrored) / 2, atol=1e-5)


def test_one_inference_copy_per_loaded_model_same_probabilities(tiny_registry: list[str]) -> None:
    model = load_model(tiny_registry[0])
    copy = inference_copy(model)
    assert copy is not model and copy.module is not model.module, "a folded, channels-last copy"
    assert inference_copy(model) is copy, "made once, then shared"
    crops = np.random.default_rng(0).integers(0, 255, (3, 48, 48), dtype=np.uint8)
    assert np.allclose(predict_proba(copy, crops), predict_proba(model, crops), atol=1e-5)
    assert inference_copy(load_model(tiny_registry[0])) is not copy, "another load gets its own"
    gone = weakref.ref(copy.module)
    del model, copy
    gc.collect()
    assert gone() is None, "a model let go takes its copy with it"


class _PauseWhileTraced(torch.nn.Module):
    """Passes its input on; while torch.fx traces it, waits until another thread has run a model."""

    def __init__(self, tracing: threading.Event, other_done: threading.Event) -> None:
        super().__init__()
        self.tracing, self.other_done = tracing, other_done

    def __deepcopy__(self, memo: dict) -> _PauseWhileTraced:
        return _PauseWhileTraced(self.tracing, self.other_done)  # events are shared, not copied

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.fx.Proxy):
            self.tracing.set()
            self.other_done.wait(timeout=60)
        return x


def test_building_a_copy_leaves_other_threads_forward_passes_alone(tiny_registry: list[str]) -> None:
    """torch.fx patches every module while it traces: a live stream's forward pass in another thread
    died with "module is not installed as a submodule" when a second stream built its copy."""
    serving, building = load_model(tiny_registry[0]), load_model(tiny_registry[1])
    crops = np.random.default_rng(1).integers(0, 255, (4, 48, 48), dtype=np.uint8)
    expected = predict_proba(serving, crops)
    serving_copy = inference_copy(serving)  # made before: the lock that makes copies is taken below
    tracing, other_done = threading.Event(), threading.Event()
    paused = LoadedModel(
        building.name,
        torch.nn.Sequential(_PauseWhileTraced(tracing, other_done), building.module).eval(),
        building.card,
    )
    outcome: list[object] = []

    def serve() -> None:
        try:
            assert tracing.wait(timeout=60), "the copy was never traced"
            outcome.append(predict_proba(serving, crops))  # the original module: patched while tracing
            outcome.append(predict_proba(serving_copy, crops))
        except Exception as err:  # noqa: BLE001 - the failure is the finding
            outcome.append(err)
        finally:
            other_done.set()

    thread = threading.Thread(target=serve)
    thread.start()
    copy = inference_copy(paused)
    thread.join(timeout=60)
    assert len(outcome) == 2, outcome
    assert all(isinstance(out, np.ndarray) and np.allclose(out, expected, atol=1e-5) for out in outcome)
    assert copy is not paused and np.allclose(
        predict_proba(copy, crops), predict_proba(building, crops), atol=1e-5
    ), "the copy was still built, and right"
