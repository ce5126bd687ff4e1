"""The training flags shared by `python -m core train` and `python -m core jobs submit`.

Every flag defaults to None, which keeps TrainConfig's own default: one place holds defaults.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

DATA_DEFAULT = "../shared/datasets/fer2013"

TRAIN_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--data", {"default": DATA_DEFAULT, "help": "FER2013 folder or fer2013.csv"}),
    ("--val-data", {"help": "validation data (default: --data, split val)"}),
    ("--arch", {"dest": "architecture", "help": "architecture name (default vgg)"}),
    ("--arch-args", {"help": "architecture arguments as JSON"}),
    ("--scheme", {"choices": ["baseline", "masked"]}),
    ("--mask-mode", {"choices": ["random", "expand"]}),
    ("--mask-probability", {"type": float}),
    ("--clusters", {"type": int}),
    ("--cluster-scope", {"choices": ["image", "dataset"]}),
    ("--attention-model", {"help": "trained baseline for the masked scheme"}),
    ("--epochs", {"type": int}),
    ("--batch-size", {"type": int}),
    ("--optimizer", {"choices": ["sgd", "adamw"]}),
    ("--lr", {"type": float}),
    ("--weight-decay", {"type": float}),
    ("--schedule", {"choices": ["cosine", "plateau"]}),
    ("--label-smoothing", {"type": float}),
    ("--ema-decay", {"type": float}),
    ("--input-size", {"type": int}),
    ("--seed", {"type": int}),
    ("--limit", {"type": int, "help": "use only this many training images"}),
    ("--threads", {"type": int}),
    ("--device", {"help": "auto (the GPU when there is one), cpu or cuda"}),
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


def config_from_args(args: argparse.Namespace) -> Any:
    """A TrainConfig from parsed flags (flags left out keep TrainConfig's defaults)."""
    from core.training import TrainConfig

    values = {key: getattr(args, key) for key in FLAG_FOR_FIELD if getattr(args, key) is not None}
    if "arch_args" in values:
        try:
            values["arch_args"] = json.loads(values["arch_args"])
        except json.JSONDecodeError as err:
            raise ValueError(f"--arch-args is not valid JSON: {err}") from None
    if args.class_weights:
        values["class_weights"] = True
    if args.no_augment:
        values["augment"] = False
    return TrainConfig.from_dict(values)
