"""Honest confidence: temperature scaling fitted on labelled faces, and how calibrated a model is.

A model's logits are divided by one temperature T > 0 before the softmax (Guo et al., "On
Calibration of Modern Neural Networks", 2017). T is fitted by minimising the negative
log-likelihood on a held-out split; argmax, and so accuracy, never change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

ECE_BINS = 15
# Bounds of the search: far beyond any temperature a trained classifier needs.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / temperature)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("no faces to measure the likelihood on")
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of labelled logits (N, C), searched in TEMPERATURE_BOUNDS."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits {logits.shape} and labels {labels.shape} do not match")
    if len(labels) == 0:
        raise ValueError("no faces to fit a temperature on")
    # The NLL is convex in 1/T, so a bounded scalar search finds its one minimum.
    found = minimize_scalar(
        lambda t: nll(logits, labels, t), bounds=TEMPERATURE_BOUNDS, method="bounded", options={"xatol": 1e-4}
    )
    return float(found.x)


def scaled_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature), row by row."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict[str, list]:
    """Per equal-width confidence bin (of the top probability): faces, mean confidence and accuracy.

    Empty bins hold count 0 and None for confidence and accuracy.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 goes to bin 0.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    confidence_sums = np.bincount(index, weights=confidence, minlength=bins)
    right_sums = np.bincount(index, weights=right.astype(float), minlength=bins)
    return {
        "edges": [b / bins for b in range(bins + 1)],
        "count": [int(c) for c in counts],
        "confidence": [float(s / c) if c else None for s, c in zip(confidence_sums, counts, strict=True)],
        "accuracy": [float(s / c) if c else None for s, c in zip(right_sums, counts, strict=True)],
    }


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the face-weighted mean gap between accuracy and mean confidence over equal-width bins."""
    table = reliability(probabilities, labels, bins)
    total = sum(table["count"])
    if total == 0:
        raise ValueError("no faces to measure the calibration error on")
    return float(
        sum(
            count * abs(accuracy - confidence)
            for count, accuracy, confidence in zip(
                table["count"], table["accuracy"], table["confidence"], strict=True
            )
            if count
        )
        / total
    )


def cross_fitted_ece(
    logits: np.ndarray, labels: np.ndarray, folds: int = 2, seed: int = 0, bins: int = ECE_BINS
) -> dict[str, Any]:
    """ECE out of sample: each fold's faces scaled by a temperature fitted on the other folds.

    Returns the pooled ECE over all faces and the temperature of each fold.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    parts = np.array_split(order, folds)
    probabilities = np.zeros_like(logits)
    temperatures = []
    for k, held_out in enumerate(parts):
        fit_on = np.concatenate([part for j, part in enumerate(parts) if j != k])
        temperature = fit_temperature(logits[fit_on], labels[fit_on])
        probabilities[held_out] = scaled_probabilities(logits[held_out], temperature)
        temperatures.append(temperature)
    return {
        "ece": expected_calibration_error(probabilities, labels, bins),
        "nll": probability_nll(probabilities, labels),
        "temperatures": temperatures,
        "folds": folds,
        "seed": seed,
    }


def calibration_report(logits: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """Fit a temperature and measure it: NLL and ECE before and after (in sample), the 2-fold
    cross-fitted ECE and NLL, and the reliability tables before and after: JSON-ready."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    temperature = fit_temperature(logits, labels)
    before, after = scaled_probabilities(logits), scaled_probabilities(logits, temperature)
    crossed = cross_fitted_ece(logits, labels, bins=bins)
    return {
        "temperature": temperature,
        "count": int(len(labels)),
        "bins": bins,
        "nll_before": nll(logits, labels),
        "nll_after": nll(logits, labels, temperature),
        "ece_before": expected_calibration_error(before, labels, bins),
        "ece_after": expected_calibration_error(after, labels, bins),
        "ece_cross_fitted": crossed["ece"],
        "nll_cross_fitted": crossed["nll"],
        "cross_fit_temperatures": crossed["temperatures"],
        "reliability_before": reliability(before, labels, bins),
        "reliability_after": reliability(after, labels, bins),
    }


def average_report(
    member_logits: Sequence[np.ndarray],
    labels: np.ndarray,
    temperatures: Sequence[float],
    bins: int = ECE_BINS,
) -> dict[str, Any]:
    """The same measures for the average of several models' probabilities: before (members at
    temperature 1), after (members at `temperatures`) and 2-fold cross-fitted (each member's
    temperature fitted on the other half). Its own temperature is 1."""
    logits = [np.asarray(m, dtype=np.float64) for m in member_logits]
    labels = np.asarray(labels)

    def mean(ts: Sequence[float], rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return np.mean([scaled_probabilities(m[rows], t) for m, t in zip(logits, ts, strict=True)], axis=0)

    before, after = mean([1.0] * len(logits)), mean(temperatures)
    order = np.random.default_rng(0).permutation(len(labels))
    crossed = np.zeros_like(after)
    first, second = np.array_split(order, 2)
    for held_out, fit_on in ((first, second), (second, first)):
        fitted = [fit_temperature(m[fit_on], labels[fit_on]) for m in logits]
        crossed[held_out] = mean(fitted, held_out)
    return {
        "temperature": 1.0,
        "count": int(len(labels)),
        "bins": bins,
        "nll_before": probability_nll(before, labels),
        "nll_after": probability_nll(after, labels),
        "ece_before": expected_calibration_error(before, labels, bins),
        "ece_after": expected_calibration_error(after, labels, bins),
        "ece_cross_fitted": expected_calibration_error(crossed, labels, bins),
        "nll_cross_fitted": probability_nll(crossed, labels),
        "reliability_before": reliability(before, labels, bins),
        "reliability_after": reliability(after, labels, bins),
    }


def probability_nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log of the probability given to the true class."""
    chosen = np.asarray(probabilities)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(chosen, 1e-12, None)).mean())


def markdown_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per model: temperature, NLL and ECE before and after, and the cross-fitted ECE."""
    rows = [
        "| model | faces | temperature | NLL before | NLL after | ECE before | ECE after (in sample) "
        "| ECE after (2-fold cross-fitted) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in reports.items():
        temperature = f"{r['temperature']:.3f}" if "members" not in r else "members' own"
        rows.append(
            f"| {name} | {r['count']} | {temperature} | {r['nll_before']:.4f} | {r['nll_after']:.4f} "
            f"| {r['ece_before']:.2%} | {r['ece_after']:.2%} | {r['ece_cross_fitted']:.2%} |"
        )
    return "\n".join(rows)
