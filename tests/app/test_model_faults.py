"""One broken model costs only that model: a bad card or bad weights, in the registry, the CLI and the app.

Models come from tiny_registry (real tiny_a and tiny_b in a temporary FER_STUDIO_HOME); each
test breaks one of them the way a disk, an editor or a download would.
"""

from __future__ import annotations

import json
import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.models.loading import load_model
from core.models.registry import ModelLoadError, broken_models, list_models, read_weights
from tests.helpers import PAGES, fresh_app, navigation_from_app_py, open_page  # noqa: F401 (autouse fixtures)

# The app tests' fixtures: caches cleared around each test, every page run through app.py.

BAD_CARDS = {
    "a JSON list": "[]",
    "evaluations not an object": None,  # the real card with "evaluations": "oops"
    "invalid JSON": '{"architecture": "vgg",',
    "an evaluation without accuracy": None,  # the real card with one empty evaluation
}


def break_card(home: Path, name: str, how: str) -> None:
    path = home / "models" / f"{name}.json"
    card = json.loads(path.read_text())
    if how == "evaluations not an object":
        path.write_text(json.dumps({**card, "evaluations": "oops"}))
    elif how == "an evaluation without accuracy":
        path.write_text(json.dumps({**card, "evaluations": {"fer/val": {}}}))
    else:
        path.write_text(BAD_CARDS[how])


class Payload:
    """Unpickling this would run a command: torch.load(weights_only=True) must refuse it."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo this must never run",))


def break_weights(home: Path, name: str, how: str) -> None:
    path = home / "models" / f"{name}.pt"
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random bytes":
        path.write_bytes(random.Random(0).randbytes(len(data)))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "pickle payload":
        with open(path, "wb") as handle:
            pickle.dump({"weight": Payload()}, handle)
    elif how == "another network's weights":
        torch.save({"weight": torch.zeros(3, 3)}, path)


BAD_WEIGHTS = ["truncated", "random bytes", "empty", "pickle payload", "another network's weights"]


@pytest.mark.parametrize("how", list(BAD_CARDS))
def test_a_broken_card_costs_only_its_model(tiny_registry: list[str], isolated_home: Path, how: str) -> None:
    break_card(isolated_home, "tiny_b", how)
    assert [card["name"] for card in list_models()] == ["tiny_a"]
    (broken,) = broken_models()
    assert broken.name == "tiny_b" and "model tiny_b" in broken.reason and "tiny_b.json" in broken.reason
    with pytest.raises(ModelLoadError, match="model tiny_b: its card"):
        load_model("tiny_b")
    load_model("tiny_a")


@pytest.mark.parametrize("how", BAD_WEIGHTS)
def test_broken_weights_raise_one_clear_error(
    tiny_registry: list[str], isolated_home: Path, how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    break_weights(isolated_home, "tiny_b", how)
    with pytest.raises(ModelLoadError, match=r"model tiny_b: its weights .*tiny_b\.pt") as raised:
        load_model("tiny_b")
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 400
    assert "must never run" not in capfd.readouterr().out
    load_model("tiny_a")


def test_any_bytes_as_weights_give_a_model_load_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    for seed in range(300):
        path.write_bytes(random.Random(seed).randbytes(random.Random(seed).choice([1, 64, 2000, 40000])))
        with pytest.raises(ModelLoadError, match="model noise: its weights"):
            read_weights(path, "noise")


def test_models_command_warns_about_a_broken_card_and_lists_the_rest(
    tiny_registry: list[str], isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_card(isolated_home, "tiny_a", "evaluations not an object")
    assert main(["models"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("tiny_b ") and "tiny_a" not in out
    assert err.startswith("warning: model tiny_a: its card") and "evaluations" in err
    assert len(err.splitlines()) == 1


def test_models_command_says_which_weights_are_broken(
    tiny_registry: list[str], isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_weights(isolated_home, "tiny_a", "truncated")
    assert main(["models"]) == 1
    out, err = capsys.readouterr()
    rows = dict(line.split(maxsplit=1) for line in out.splitlines())
    assert "broken weights" in rows["tiny_a"] and "broken" not in rows["tiny_b"]
    assert err.startswith("warning: model tiny_a: its weights") and len(err.splitlines()) == 1


@pytest.mark.parametrize("broken", ["card", "weights"])
def test_predict_leaves_out_a_broken_model_with_a_warning(
    tiny_registry: list[str],
    isolated_home: Path,
    astronaut,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    broken: str,
) -> None:
    if broken == "card":
        break_card(isolated_home, "tiny_b", "a JSON list")
    else:
        break_weights(isolated_home, "tiny_b", "random bytes")
    astronaut.save(tmp_path / "portrait.jpg")
    assert main(["predict", str(tmp_path / "portrait.jpg")]) == 0
    out, err = capsys.readouterr()
    assert "tiny_a:" in out and "tiny_b" not in out
    assert err.startswith("warning: model tiny_b:") and len(err.splitlines()) == 1
    assert main(["predict", str(tmp_path / "portrait.jpg"), "--models", "tiny_a", "tiny_b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model tiny_b:") and len(err.splitlines()) == 1


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_a_broken_card(
    tiny_registry: list[str], isolated_home: Path, page: str
) -> None:
    break_card(isolated_home, "tiny_b", "a JSON list")
    app = open_page(page)
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="model_a").value == "tiny_a"


def test_models_page_lists_broken_cards_and_why(tiny_registry: list[str], isolated_home: Path) -> None:
    break_card(isolated_home, "tiny_b", "evaluations not an object")
    app = open_page("pages/models.py")
    assert not app.exception, [e.value for e in app.exception]
    (note,) = [w.value for w in app.warning if "tiny_b" in w.value]
    assert "model tiny_b: its card" in note and "evaluations: 'oops' is not of type 'object'" in note
    assert list(app.dataframe[0].value["name"]) == ["tiny_a"]


def test_analyze_warns_about_broken_weights_and_reads_faces_with_the_other_model(
    tiny_registry: list[str], isolated_home: Path
) -> None:
    break_weights(isolated_home, "tiny_b", "truncated")
    app = open_page("pages/analyze.py")
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    (warning,) = [w.value for w in app.warning if "tiny_b" in w.value]
    assert "model tiny_b: its weights" in warning and "cannot be loaded" in warning
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Faces found"] == "1" and "Model A · tiny_a" in metrics
    assert not any("tiny_b" in label for label in metrics)
    assert "Grad-CAM · tiny_a" in [c for image in app.get("image") for c in image.captions]


def test_clusters_page_works_with_the_model_that_loads(tiny_registry: list[str], isolated_home: Path) -> None:
    break_weights(isolated_home, "tiny_a", "empty")
    app = open_page("pages/clusters.py")
    assert not app.exception, [e.value for e in app.exception]
    assert any("model tiny_a: its weights" in w.value for w in app.warning)
    assert app.selectbox(key="clusters_attention").options == ["tiny_b"]
