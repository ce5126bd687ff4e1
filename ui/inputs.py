"""Image inputs shared by the pages: upload, browser camera, or the built-in sample.

Uploads and camera photos stay in memory (Streamlit keeps them in RAM, and app.py keeps its
web server from spooling large ones to disk: ui.deploy.keep_uploads_in_memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.serving.public import limits
from ui.display import UPLOAD_TYPES, sample_png

SAMPLE_NAME = "sample: astronaut portrait"


@dataclass(frozen=True)
class ImageInput:
    """One image to analyse: a display name, its bytes and where it came from."""

    name: str
    data: bytes
    source: str  # "upload", "camera" or "sample"


def image_inputs(key: str, multiple: bool = True) -> list[ImageInput]:
    """Uploader and camera side by side; the sample when neither holds an image.

    Files larger than FER_STUDIO_MAX_UPLOAD_MB are refused by the uploader in the browser, by the
    web server in public mode (ui.deploy.guard_public_server), and here again: whatever reaches
    the page over the limit is left out with a warning.
    """
    max_mb = limits().max_upload_mb
    upload_column, camera_column = st.columns([3, 2])
    with upload_column:
        uploaded = st.file_uploader(
            "Upload photos" if multiple else "Upload a photo",
            type=list(UPLOAD_TYPES),
            accept_multiple_files=multiple,
            key=f"{key}_upload",
            max_upload_size=max_mb,
            help=f"JPEG, PNG, WebP, BMP or TIFF, up to {max_mb} MB each.",
        )
    with camera_column:
        photo = None
        if st.toggle(
            "Use the camera", key=f"{key}_camera_on", help="Your browser asks for permission first."
        ):
            photo = st.camera_input("Take a photo", key=f"{key}_camera")
    files = [f for f in (uploaded if isinstance(uploaded, list) else [uploaded]) if f is not None]
    items = [ImageInput("camera photo", photo.getvalue(), "camera")] if photo is not None else []
    items += [ImageInput(f.name, f.getvalue(), "upload") for f in files]
    kept = within_size(items, max_mb)
    return kept or [ImageInput(SAMPLE_NAME, sample_png(), "sample")]


def within_size(items: list[ImageInput], max_mb: int) -> list[ImageInput]:
    """The items of at most max_mb megabytes; a warning on the page for each one left out."""
    kept = []
    for item in items:
        if len(item.data) > max_mb * 2**20:
            st.warning(
                f"**{item.name}** is {len(item.data) / 2**20:.1f} MB, over the {max_mb} MB a photo may be "
                "here: it is left out. Send a smaller copy (a phone's 'medium' size is plenty).",
                icon=":material/block:",
            )
        else:
            kept.append(item)
    return kept
