"""The training settings: TrainConfig (everything that defines a run), the flags shared by `python -m core train` and `python -m core jobs submit`,
and `check_settings`, the one check of a TrainConfig that every entry (both commands and the
Train page) goes through when it builds one.

Every flag defaults to None, which keeps TrainConfig's own default: one place holds defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from core.paths import DATA_DEFAULT

SCHEMES = ("baseline", "masked")
MASK_MODES = ("random", "expand")
CLUSTER_SCOPES = ("image", "dataset")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "plateau")
DEVICE_TYPES = ("cpu", "cuda")
INPUT_SIZES = (16, 48)  # a random crop of the 48x48 face; vgg's 5 blocks pool 16 down to 1
MAX_CLUSTERS = 16


@dataclass
class TrainConfig:
    """Everything that defines a run; stored as plain data in config.json and checkpoints."""

    data: str
    val_data: str | None = None
    train_split: str | None = "train"
    val_split: str | None = "val"
    architecture: str = "vgg"
    arch_args: dict[str, Any] = field(default_factory=dict)
    scheme: str = "baseline"
    mask_mode: str = "random"
    mask_probability: float = 0.5
    clusters: int = 3
    cluster_scope: str = "image"
    attention_model: str | None = None
    cam_method: str = "gradcam"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    class_weights: bool = False
    augment: bool = True
    corrupt_probability: float = 0.0
    init_weights: str | None = None
    ema_decay: float = 0.999
    seed: int = 0
    limit: int | None = None
    input_size: int = 40
    threads: int | None = None
    device: str = "auto"
    workers: int = 0

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


TRAIN_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--data", {"default": DATA_DEFAULT, "help": "FER2013 folder or fer2013.csv"}),
    ("--val-data", {"help": "validation data (default: --data, split val)"}),
    ("--arch", {"dest": "architecture", "help": "architecture name (default vgg)"}),
    ("--arch-args", {"help": "architecture arguments as JSON"}),
    ("--scheme", {"choices": SCHEMES}),
    ("--mask-mode", {"choices": MASK_MODES}),
    ("--mask-probability", {"type": float}),
    ("--clusters", {"type": int}),
    ("--cluster-scope", {"choices": CLUSTER_SCOPES}),
    ("--attention-model", {"help": "trained baseline for the masked scheme"}),
    ("--epochs", {"type": int}),
    ("--batch-size", {"type": int}),
    ("--optimizer", {"choices": OPTIMIZERS}),
    ("--lr", {"type": float}),
    ("--weight-decay", {"type": float}),
    ("--schedule", {"choices": SCHEDULES}),
    ("--warmup-epochs", {"type": float}),
    ("--label-smoothing", {"type": float}),
    ("--ema-decay", {"type": float}),
    (
        "--corrupt-probability",
        {"type": float, "help": "share of training faces damaged like real photos (core.data.corruptions)"},
    ),
    (
        "--init-weights",
        {"help": "fine-tune: start from this model's weights (a registered name or .pt file)"},
    ),
    ("--input-size", {"type": int}),
    ("--seed", {"type": int}),
    ("--limit", {"type": int, "help": "use only this many training images"}),
    ("--threads", {"type": int}),
    ("--device", {"help": "auto (the GPU when there is one), cpu, cuda or cuda:N"}),
    ("--workers", {"type": int, "help": "data-loading processes (0: in the training process)"}),
]

# TrainConfig field → the flag that sets it (to write a run's command line into its model card).
FLAG_FOR_FIELD: dict[str, str] = {
    options.get("dest") or flag[2:].replace("-", "_"): flag for flag, options in TRAIN_OPTIONS
}


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Add every training flag to a parser."""
    for flag, options in TRAIN_OPTIONS:
        parser.add_argument(flag, **options)
    parser.add_argument("--class-weights", action="store_true", default=None)
    parser.add_argument("--no-augment", action="store_true")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A TrainConfig from parsed flags (flags left out keep TrainConfig's defaults)."""
    values = {key: getattr(args, key) for key in FLAG_FOR_FIELD if getattr(args, key) is not None}
    if "arch_args" in values:
        values["arch_args"] = parse_arch_args(values["arch_args"])
    if args.class_weights:
        values["class_weights"] = True
    if args.no_augment:
        values["augment"] = False
    return TrainConfig.from_dict(values)


def parse_arch_args(text: str) -> Any:
    """Architecture arguments typed as JSON (an empty text is none); check_settings checks the result."""
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"architecture arguments are not valid JSON ({err}): {text}") from None


def check_settings(config: Any) -> None:
    """Refuse a TrainConfig whose settings training would fail on, before anything is loaded or queued.

    Raises ValueError with one line that names each refused setting. Whether a device asked
    for is present is checked where the training runs (core.training.loop.resolve_device).
    """
    from core.models.architectures import check_arch_args

    problems = [
        *_non_finite(config),
        *_choice(config, "scheme", SCHEMES),
        *_choice(config, "mask_mode", MASK_MODES),
        *_choice(config, "cluster_scope", CLUSTER_SCOPES),
        *_choice(config, "optimizer", OPTIMIZERS),
        *_choice(config, "schedule", SCHEDULES),
        *_within(config, "epochs", 1),
        *_within(config, "batch_size", 1),
        *_within(config, "clusters", 1, MAX_CLUSTERS),
        *_within(config, "input_size", *INPUT_SIZES),
        *_within(config, "workers", 0, why="0 loads batches in the training process"),
        *_within(config, "weight_decay", 0.0),
        *_within(config, "warmup_epochs", 0.0),
        *_within(config, "mask_probability", 0.0, 1.0),
        *_within(config, "corrupt_probability", 0.0, 1.0),
        *_below(config, "label_smoothing", 0.0, 1.0),
        *_below(config, "ema_decay", 0.0, 1.0, why="0 turns the average off"),
    ]
    if not config.lr > 0:
        problems.append(f"lr must be above 0, not {config.lr}")
    if config.threads is not None:
        problems += _within(config, "threads", 1, why="leave it out for torch's default")
    if config.limit is not None:
        problems += _within(config, "limit", 1, why="leave it out to use every image")
    if config.scheme == "masked" and not config.attention_model:
        problems.append("the masked scheme needs attention_model: a trained baseline")
    if config.init_weights:
        from core.models.registry import ModelNotFound, find_model

        try:
            find_model(config.init_weights)
        except ModelNotFound as err:
            problems.append(f"init weights: {err}")
    problems += _device_problems(config.device)
    try:
        check_arch_args(config.architecture, config.arch_args)
    except ValueError as err:
        problems.append(str(err))
    if problems:
        raise ValueError("; ".join(problems))


def _non_finite(config: Any) -> list[str]:
    """Each setting holding an infinite or not-a-number value (nested in arch_args too)."""

    def bad(value: Any) -> bool:
        if isinstance(value, float):
            return not math.isfinite(value)
        if isinstance(value, dict):
            return any(bad(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(bad(v) for v in value)
        return False

    return [
        f"{_name(item.name)} must be a finite number, not {getattr(config, item.name)}"
        for item in dataclasses.fields(config)
        if bad(getattr(config, item.name))
    ]


def _name(field: str) -> str:
    return field.replace("_", " ")


def _choice(config: Any, field: str, choices: tuple[str, ...]) -> list[str]:
    value = getattr(config, field)
    if value in choices:
        return []
    return [f"{_name(field)} must be one of {', '.join(choices)}, not {value!r}"]


def _within(config: Any, field: str, low: float, high: float | None = None, why: str = "") -> list[str]:
    value = getattr(config, field)
    if low <= value and (high is None or value <= high):
        return []
    allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
    return [f"{_name(field)} must be {allowed}{f' ({why})' if why else ''}, not {value}"]


def _below(config: Any, field: str, low: float, high: float, why: str = "") -> list[str]:
    value = getattr(config, field)
    if low <= value < high:
        return []
    return [
        f"{_name(field)} must be at least {low} and below {high}{f' ({why})' if why else ''}, not {value}"
    ]


def _device_problems(name: str) -> list[str]:
    import torch

    if name == "auto":
        return []
    try:
        kind = torch.device(name).type
    except (RuntimeError, TypeError):
        kind = None
    if kind in DEVICE_TYPES:
        return []
    return [f"device must be auto, cpu, cuda or cuda:N, not {name!r}"]
