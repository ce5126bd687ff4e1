"""Pictures of a two-model comparison as PNG files (matplotlib, no display): both maps on one colour
scale, their difference, and the deletion curves beside the random baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.explain.compare import FaceComparison

PIXELS = 240  # each picture's side
MAP_COLOURS = "jet"
DIFFERENCE_COLOURS = "RdBu_r"  # red: B looks more, blue: A looks more


def _figure(inches: float = 3.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(inches, inches), dpi=PIXELS / inches)
    return figure, figure.add_subplot()


def _map_axes(axes: Any, crop: np.ndarray, values: np.ndarray, title: str, **kwargs: Any) -> Any:
    axes.imshow(crop, cmap="gray", vmin=0, vmax=255)
    image = axes.imshow(values, alpha=0.5, **kwargs)
    axes.set_title(title, fontsize=8)
    axes.set_axis_off()
    return image


def save_comparison(comparison: FaceComparison, folder: Path, stem: str) -> list[Path]:
    """Write {stem}_{model}.png for both maps, {stem}_difference.png and {stem}_deletion.png; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = comparison.names
    written = []
    for name in comparison.names:
        figure, axes = _figure()
        shares = comparison.parts[name]
        top = max((p for p in shares if p != "rest"), key=shares.__getitem__)
        title = f"{name}: {top.replace('_', ' ')} {shares[top]:.0%}"
        _map_axes(
            axes,
            comparison.crop,
            comparison.maps[name],
            title,
            cmap=MAP_COLOURS,
            vmin=0,
            vmax=comparison.vmax,
        )
        written.append(_save(figure, folder / f"{stem}_{name}.png"))
    figure, axes = _figure()
    limit = max(float(np.abs(comparison.difference).max()), 1e-6)
    image = _map_axes(
        axes,
        comparison.crop,
        comparison.difference,
        f"{b} - {a}",
        cmap=DIFFERENCE_COLOURS,
        vmin=-limit,
        vmax=limit,
    )
    figure.colorbar(image, ax=axes, fraction=0.046)
    written.append(_save(figure, folder / f"{stem}_difference.png"))
    figure, axes = _figure(4.0)
    for name, colour in zip(comparison.names, ("tab:blue", "tab:orange"), strict=True):
        curve, random = comparison.deletion[name], comparison.random_deletion[name]
        axes.plot(curve.fractions, curve.probabilities, color=colour, label=f"{name} (AUC {curve.auc:.2f})")
        axes.plot(
            random.fractions,
            random.probabilities,
            color=colour,
            ls="--",
            label=f"{name} random ({random.auc:.2f})",
        )
    axes.set_xlabel(f"fraction removed (fill: {comparison.deletion[a].fill})", fontsize=8)
    axes.set_ylabel("probability of the explained class", fontsize=8)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    written.append(_save(figure, folder / f"{stem}_deletion.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    return path
