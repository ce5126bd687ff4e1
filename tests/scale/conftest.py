"""A real local Ray for the tests of core.scale (2 CPUs, 127.0.0.1, no dashboard), one per module."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # node address 127.0.0.1 (core.scale.session)
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """Ray started in this process for the module's tests; stopped after them."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def write_photos(folder: Path, astronaut: Image.Image, copies: int = 3) -> Path:
    """The portrait in a few sizes and mirrored (one face each), a blank photo and a corrupt file."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(copies):
        side = 512 - 28 * number
        photo = astronaut.resize((side, side))
        (ImageOps.mirror(photo) if number % 2 else photo).save(folder / f"face{number:02d}.png")
    Image.new("RGB", (120, 90), "white").save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"this is not a picture")
    return folder
