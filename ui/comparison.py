"""Where two models look on one face, drawn for a page: the Analyze page and the Video frame view.

The maps on one colour scale with an opacity slider, side by side with B minus A, or flipped or
swiped on one picture; both maps on the whole photo. Each control reruns only this fragment.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from core.explain.saliency import overlay_on_photo
from core.faces.detection import Face
from core.faces.images import fit_within
from ui.charts import deletion_chart, part_share_chart, saliency_comparison_figure, swipe_figure
from ui.display import agreement_figures, part_share_labels

if TYPE_CHECKING:
    from core.explain.compare import FaceComparison

SIDE_BY_SIDE, FLIP, SWIPE = "Side by side", "Flip A ⇄ B", "Swipe"
VIEWS = (SIDE_BY_SIDE, FLIP, SWIPE)
MAPS_CAPTION = (
    "Both maps use one colour scale, 0 (blue) to 1 (red): each is scaled so its own peak is 1. "
    "B − A is red where B looks more than A, blue where A looks more, white where they agree."
)


def map_views(crop: np.ndarray, maps: Mapping[str, np.ndarray], key: str) -> float:
    """The two maps on the face crop: side by side with B − A, or flipped or swiped on one picture.

    Returns the opacity picked, for the other pictures of the comparison.
    """
    names = list(maps)
    view_column, opacity_column = st.columns([3, 2], vertical_alignment="bottom")
    view = view_column.segmented_control(
        "View", VIEWS, default=SIDE_BY_SIDE, required=True, key=f"{key}-view"
    )
    opacity = opacity_column.slider(
        "Map opacity",
        0.0,
        1.0,
        0.5,
        0.05,
        key=f"{key}-opacity",
        help="0 shows the face alone, 1 the map alone.",
    )
    if view == FLIP:
        letters = {f"A · {names[0]}": 1.0, f"B · {names[1]}": 0.0}
        shown = st.segmented_control(
            "Show", list(letters), default=next(iter(letters)), required=True, key=f"{key}-flip"
        )
        figure = swipe_figure(crop, maps, letters[shown], opacity)
    elif view == SWIPE:
        split = st.slider(
            "Swipe: A on the left of the line, B on the right",
            0,
            100,
            50,
            5,
            format="%d%%",
            key=f"{key}-swipe",
        )
        figure = swipe_figure(crop, maps, split / 100, opacity)
    else:
        figure = saliency_comparison_figure(crop, maps, opacity)
    st.plotly_chart(figure, width="stretch", key=f"{key}-maps-{view}", config={"displayModeBar": False})
    st.caption(MAPS_CAPTION)
    return opacity


OVERLAYS = "comparison_overlays"  # session state: the last few whole-photo overlays, encoded
OVERLAYS_KEPT = 6
OVERLAY_SIDE = 720  # shown in a column about 370 px wide: no need to encode the full photo


def _overlay_jpeg(photo: Image.Image, faces: Sequence[Face], maps: list[np.ndarray], opacity: float) -> bytes:
    """One model's maps on the photo, scaled to fit OVERLAY_SIDE, as JPEG bytes; kept in the session by
    the maps' bytes, the photo's size and the opacity, so reruns (a flip, a swipe) encode nothing."""
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(m).tobytes() for m in maps)).hexdigest()
    key = (digest, photo.size, round(opacity, 3))
    kept: dict[tuple, bytes] = st.session_state.setdefault(OVERLAYS, {})
    if key not in kept:
        picture = fit_within(overlay_on_photo(photo, list(faces), maps, weight=opacity), OVERLAY_SIDE)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
        while len(kept) >= OVERLAYS_KEPT:
            kept.pop(next(iter(kept)))
        kept[key] = buffer.getvalue()
    return kept[key]


def photo_overlays(
    photo: Image.Image,
    faces: Sequence[Face],
    maps: Sequence[Mapping[str, np.ndarray]],
    opacity: float,
    columns: Sequence[DeltaGenerator],
) -> None:
    """Each model's maps of every face laid on the whole photo, one model per column."""
    names = list(maps[0]) if maps else []
    for column, name, letter in zip(columns, names, "AB", strict=False):
        overlay = _overlay_jpeg(photo, faces, [face_maps[name] for face_maps in maps], opacity)
        column.image(overlay, caption=f"Model {letter} · {name} on the whole photo", width="stretch")


def agreement(comparison: FaceComparison, across: bool = False) -> None:
    """How much the two maps agree: Spearman's rank correlation and the top-20 % IoU, one under the
    other, or with `across` side by side in a row."""
    st.markdown("**How much the two maps agree**")
    figures = agreement_figures(comparison.agreement)
    places = st.columns(len(figures) + 2) if across else [st.container() for _ in figures]
    for place, (label, value, help_text) in zip(places, figures, strict=False):
        place.metric(label, value, help=help_text)


def numbers(comparison: FaceComparison, key: str) -> None:
    """The comparison in one sentence, where each model looks (its share on each facial part), and
    whether each map is faithful (its deletion curve beside a random order's)."""
    st.info(comparison.sentence, icon=":material/compare:")
    parts, faithful = st.columns(2)
    with parts:
        st.plotly_chart(
            part_share_chart(part_share_labels(comparison.parts), "Where each map lies, by facial part"),
            width="stretch",
            key=f"{key}-parts",
            config={"displayModeBar": False},
        )
        st.caption("The share of each map on each part (they add up to 100 %).")
    with faithful:
        st.plotly_chart(
            deletion_chart(comparison.deletion, comparison.random_deletion),
            width="stretch",
            key=f"{key}-deletion",
        )
        st.caption(
            "Is each map faithful? Its most attended pixels are blurred away first: a map that found what "
            "its model uses makes the probability fall faster than a random order (a smaller area)."
        )


def face_view(comparison: FaceComparison, key: str) -> None:
    """A comparison without a photo (the Video frame view): the maps, the agreement, the numbers."""
    map_views(comparison.crop, comparison.maps, key)
    agreement(comparison, across=True)
    numbers(comparison, key)
