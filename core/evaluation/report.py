"""The accuracy table and per-class chart of the README, from evaluations recorded in model cards.

`python -m core report --models baseline masked` prints the Markdown table and writes the PNG;
the numbers come from `python -m core evaluate --model NAME --data ... --split val --record`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.labels import EMOTIONS
from core.models.registry import find_model, read_card

DEFAULT_EVALUATION = "fer2013/val"


def recorded_evaluation(name: str, key: str = DEFAULT_EVALUATION) -> dict[str, Any]:
    """The evaluation a model card holds under `key` (e.g. fer2013/val)."""
    card = read_card(find_model(name).with_suffix(".json"))
    evaluations = card.get("evaluations", {})
    if key not in evaluations:
        known = ", ".join(evaluations) or "none"
        raise LookupError(
            f"model {name!r} has no recorded evaluation {key!r} (recorded: {known}); "
            f"run python -m core evaluate --model {name} --data ... --record"
        )
    return {**evaluations[key], "card": card}


def accuracy_table(names: list[str], key: str = DEFAULT_EVALUATION) -> str:
    """Markdown: accuracy (95 % interval), macro-F1 and per-class accuracy (recall) per model, plus B−A."""
    results = [recorded_evaluation(name, key) for name in names]
    header = ["model", "scheme", "epochs", "accuracy (95 % CI)", "macro-F1", *EMOTIONS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, result in zip(names, results, strict=True):
        card = result["card"]
        low, high = result["accuracy_95ci"]
        epochs = f"{card.get('epochs_completed', '?')}/{card.get('training', {}).get('epochs', '?')}"
        cells = [
            name,
            card.get("scheme", "?"),
            epochs,
            f"{result['accuracy']:.1%} ({low:.1%}–{high:.1%})",
            f"{result['macro_f1']:.3f}",
            *(f"{result['per_class'][e]['recall']:.1%}" for e in EMOTIONS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if len(results) == 2:
        first, second = results
        difference = [
            f"{names[1]} − {names[0]}",
            "",
            "",
            f"{(second['accuracy'] - first['accuracy']) * 100:+.1f} pt",
            f"{second['macro_f1'] - first['macro_f1']:+.3f}",
            *(
                f"{(second['per_class'][e]['recall'] - first['per_class'][e]['recall']) * 100:+.1f} pt"
                for e in EMOTIONS
            ),
        ]
        lines.append("| " + " | ".join(difference) + " |")
    return "\n".join(lines)


def region_table(names: list[str], key: str = DEFAULT_EVALUATION) -> str | None:
    """Markdown: each model's accuracy on whole faces and with each attention region removed,
    or None unless every model's evaluation holds a region_removal test from the same model.
    """
    results = [recorded_evaluation(name, key) for name in names]
    sources = {result.get("region_removal_from") for result in results}
    if len(sources) != 1 or None in sources:
        return None
    regions = [r for r in results[0]["region_removal"] if r != "clean"]
    header = ["model", "whole face", *(f"without {r.replace('_', ' ')}" for r in regions)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, result in zip(names, results, strict=True):
        removal = result["region_removal"]
        cells = [f"{removal['clean']['all']:.1%}", *(f"{removal[r]['accuracy']['all']:.1%}" for r in regions)]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    source = sources.pop()
    return (
        "\n".join(lines)
        + f"\n\nRegions: k-means (n={len(regions)}) of {source}'s Grad-CAM for the true class; region 1 is the most attended."
    )


def paired_summary(names: list[str], key: str = DEFAULT_EVALUATION) -> str | None:
    """paired_sentence for two registered models' recorded evaluations under `key`."""
    if len(names) != 2:
        return None
    first, second = (recorded_evaluation(name, key) for name in names)
    return paired_sentence(first, second, names[0], names[1], key)


def paired_sentence(
    first: dict[str, Any], second: dict[str, Any], name_a: str, name_b: str, key: str
) -> str | None:
    """A sentence comparing two evaluations face by face (exact McNemar test), or None when they
    hold no per-face predictions for the same faces (evaluations recorded before they did).
    """
    import numpy as np

    from core.evaluation.metrics import paired_comparison

    if (
        "predictions" not in first
        or "predictions" not in second
        or first.get("labels") != second.get("labels")
    ):
        return None

    def digits(text: str) -> np.ndarray:
        return np.frombuffer(text.encode(), dtype=np.uint8) - ord("0")

    result = paired_comparison(
        digits(first["labels"]), digits(first["predictions"]), digits(second["predictions"])
    )
    return (
        f"Face by face on {key} ({result['count']} faces): {name_b} alone is right on "
        f"{result['only_second']}, {name_a} alone on {result['only_first']}, both on "
        f"{result['both_right']}, neither on {result['both_wrong']}; exact McNemar test "
        f"p = {result['p_value']:.2f} (below 0.05 would say the two differ)."
    )


def per_class_chart(names: list[str], path: Path, key: str = DEFAULT_EVALUATION) -> Path:
    """A PNG bar chart of per-class accuracy (recall), one bar per model and class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    results = [recorded_evaluation(name, key) for name in names]
    positions = np.arange(len(EMOTIONS))
    width = 0.8 / len(results)
    figure, axes = plt.subplots(figsize=(9, 4), dpi=120)
    for i, (name, result) in enumerate(zip(names, results, strict=True)):
        values = [result["per_class"][e]["recall"] * 100 for e in EMOTIONS]
        label = f"{name} ({result['accuracy']:.1%} overall)"
        bars = axes.bar(positions + (i - (len(results) - 1) / 2) * width, values, width, label=label)
        axes.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    axes.set_xticks(positions, EMOTIONS)
    axes.set_ylabel("accuracy on the class (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"Per-class accuracy on {key}")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def average_table(rows: dict[str, dict[str, Any]], eces: dict[str, float]) -> str:
    """Markdown: the average of models and each member: accuracy (95 % interval), macro-F1, ECE
    and, for a member, the exact McNemar test against the average (core.evaluation.record.calibrate_models)."""
    lines = [
        "| model | accuracy (95 % CI) | macro-F1 | ECE | right only by the average / only by the member | McNemar p |",
        "| --- | --- | ---: | ---: | --- | ---: |",
    ]
    for name, row in rows.items():
        low, high = row["accuracy_95ci"]
        versus = row.get("versus_average")
        split = f"{versus['only_first']} / {versus['only_second']}" if versus else ""
        p_value = f"{versus['p_value']:.3f}" if versus else ""
        ece = f"{eces[name]:.2%}" if name in eces else ""
        lines.append(
            f"| {name} | {row['accuracy']:.1%} ({low:.1%}–{high:.1%}) | {row['macro_f1']:.3f} | {ece} "
            f"| {split} | {p_value} |"
        )
    return "\n".join(lines)
