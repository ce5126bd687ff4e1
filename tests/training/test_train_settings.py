"""Bad training settings are refused at every entry (CLI, jobs CLI, Train page) with one clear line,
and oversized architecture arguments are refused before any model is built."""

from __future__ import annotations

import inspect
import resource
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import core.models.architectures
from core.cli import main
from core.jobs import LocalRunner
from core.models.architectures import MAX_PARAMETERS, architectures, check_arch_args, create_model
from core.training.config import TrainConfig
from tests.helpers import write_fer_folders

REPO = Path(__file__).resolve().parent.parent.parent

# Each bad flag, and words the one-line refusal must contain (naming the setting).
BAD_FLAGS = [
    (["--arch-args", '{"widths": [8, 16], "colour": 3}'], "takes no argument 'colour'"),
    (["--arch-args", "[8, 16]"], "must be a JSON object"),
    (["--arch-args", "{widths: 8}"], "architecture arguments are not valid JSON"),
    (["--threads", "-3"], "threads must be at least 1"),
    (["--device", "banana"], "device must be auto, cpu, cuda or cuda:N, not 'banana'"),
    (["--label-smoothing", "5"], "label smoothing must be at least 0.0 and below 1.0"),
    (["--input-size", "0"], "input size must be from 16 to 48"),
    (["--lr", "inf"], "lr must be a finite number, not inf"),
    (["--weight-decay", "nan"], "weight decay must be a finite number, not nan"),
    (["--mask-probability=-inf"], "mask probability must be a finite number, not -inf"),
]


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root with one tiny dataset, `fer`; no worker process is started by a submit."""
    import core.jobs.runner

    root = tmp_path / "data"
    write_fer_folders(root / "fer", count_per_class=2)
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(root))
    monkeypatch.delenv("FER_STUDIO_TRAINING", raising=False)
    monkeypatch.setattr(core.jobs.runner, "ensure_worker", lambda: None)
    return root


@pytest.fixture
def no_model_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything builds a model through the registry."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was built: create_model{args}{kwargs}")

    monkeypatch.setattr(core.models.architectures, "create_model", refuse)


def tiny_args(data: Path) -> list[str]:
    return ["--data", str(data), "--arch-args", '{"widths": [8, 16]}', "--epochs", "1", "--ema-decay", "0"]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS)
def test_train_command_refuses_bad_settings_in_one_line(
    flags: list[str], message: str, fer_folders: Path, tmp_path: Path, capsys
) -> None:
    run_dir = tmp_path / "run"
    argv = ["train", "--run-dir", str(run_dir), *tiny_args(fer_folders), *flags]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error, error
    assert not run_dir.exists(), "nothing is trained or written"


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS)
def test_jobs_submit_refuses_bad_settings_before_queueing(
    flags: list[str], message: str, data_root: Path, tmp_path: Path, capsys
) -> None:
    argv = ["jobs", "submit", *tiny_args(data_root / "fer"), *flags]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error, error
    assert LocalRunner().list_jobs() == []


def test_jobs_submit_accepts_good_settings(data_root: Path, tmp_path: Path, capsys) -> None:
    """The refusals above are about the bad flag, not the rest of the command line."""
    argv = ["jobs", "submit", *tiny_args(data_root / "fer"), "--threads", "1", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    (job,) = LocalRunner().list_jobs()
    assert job.status == "queued" and job.params["threads"] == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_refused_at_submit(data_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["jobs", "submit", *tiny_args(data_root / "fer"), "--device", "cuda"]) == 2
    assert "torch sees no GPU" in capsys.readouterr().err
    assert LocalRunner().list_jobs() == []
    run_dir = tmp_path / "run"
    assert main(["train", "--run-dir", str(run_dir), *tiny_args(data_root / "fer"), "--device", "cuda"]) == 2
    assert "torch sees no GPU" in capsys.readouterr().err and not run_dir.exists()


def test_several_bad_settings_are_named_together() -> None:
    with pytest.raises(ValueError) as refused:
        TrainConfig(data="x", threads=0, label_smoothing=-0.1, lr=0.0)
    message = str(refused.value)
    assert "threads" in message and "label smoothing" in message and "lr must be above 0" in message
    assert "\n" not in message


# --- architecture arguments are bounded without building the net --------------------------------


@pytest.mark.parametrize(
    ("arch_args", "limit"),
    [
        ({"widths": [12000]}, "from 1 to 1024, not 12000"),
        ({"widths": [64] * 9}, "a list of 1 to 5 numbers"),
        ({"widths": [1024] * 5, "depth": 8}, f"the limit is {MAX_PARAMETERS:,}"),
        ({"hidden": 10**9}, "from 1 to 4096"),
    ],
)
def test_oversized_architecture_arguments_are_refused_without_building_a_model(
    arch_args: dict, limit: str, data_root: Path, no_model_built: None
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="limit|from 1 to|list of"):
        TrainConfig(data=str(data_root / "fer"), arch_args=arch_args)
    config = TrainConfig(data=str(data_root / "fer"), arch_args={"widths": [8, 16]})
    config.arch_args = arch_args  # as if changed after it was built: the runner checks again
    with pytest.raises(ValueError) as refused:
        LocalRunner().submit(config)
    assert limit in str(refused.value)
    assert LocalRunner().list_jobs() == []
    # ru_maxrss is in KiB: the 12000-wide net alone would need 6 GB, the 8x1024 one 1.5 GB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def test_shipped_and_default_architectures_are_within_limits() -> None:
    assert check_arch_args("vgg", {"widths": [64, 128, 256, 512]}) == 4_819_271
    for name in architectures():
        assert check_arch_args(name, {}) == sum(p.numel() for p in create_model(name).parameters())


@pytest.mark.parametrize("name", architectures())
def test_every_constructor_argument_has_a_limit(name: str) -> None:
    """Each argument the net's constructor takes is accepted at its default value; others are not."""
    parameters = inspect.signature(type(create_model(name)).__init__).parameters
    for argument in [p for p in parameters.values() if p.name != "self"]:
        default = list(argument.default) if isinstance(argument.default, tuple) else argument.default
        check_arch_args(name, {argument.name: default})
    with pytest.raises(ValueError, match=f"{name} takes no argument 'nonexistent'"):
        check_arch_args(name, {"nonexistent": 1})


# --- the Train page ------------------------------------------------------------------------------


def submit_from_page(arch_args: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=60).run()
    field = next(w for w in at.text_input if w.label == "Architecture arguments (JSON)")
    field.input(arch_args)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize(
    ("arch_args", "message"),
    [
        ('{"widths": [12000]}', "from 1 to 1024, not 12000"),
        ('{"widths": [8, 16], "colour": 3}', "takes no argument 'colour'"),
        ("[8, 16]", "must be a JSON object"),
        ("{widths", "not valid JSON"),
    ],
)
def test_train_page_refuses_bad_architecture_arguments(
    arch_args: str, message: str, data_root: Path, monkeypatch: pytest.MonkeyPatch, no_model_built: None
) -> None:
    import core.jobs

    monkeypatch.setattr(core.jobs, "ensure_worker", lambda when_queued=False: None)
    at = submit_from_page(arch_args)
    assert message in at.error[0].value and not at.success
    assert LocalRunner().list_jobs() == []
