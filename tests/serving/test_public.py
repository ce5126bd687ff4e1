"""Public mode's library side: the limits, the gate, the bounded cache, the pipeline's face and pixel limits."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from core.faces.images import ImageError, fit_within
from core.jobs import TrainingDisabled, training_enabled
from core.jobs.settings import require_training
from core.models.loading import load_model
from core.pipeline import analyze
from core.serving import shared
from core.serving.bounded_cache import BoundedCache
from core.serving.gate import Gate, Place
from core.serving.public import limits, public_mode


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def group_photo(astronaut: Image.Image, count: int) -> Image.Image:
    """`count` copies of the astronaut's face side by side, sizes falling, on grey."""
    face = astronaut.crop((150, 40, 300, 200))
    canvas = Image.new("RGB", (200 * count, 300), (90, 90, 90))
    for index in range(count):
        side = 180 - 8 * index
        canvas.paste(face.resize((side, round(side * 160 / 150))), (200 * index + 5, 20))
    return canvas


def test_public_mode_switches_the_defaults_and_a_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FER_STUDIO_PUBLIC", "FER_STUDIO_MAX_FACES", "FER_STUDIO_TRAINING"):
        monkeypatch.delenv(name, raising=False)
    assert not public_mode() and limits().max_faces == 20 and training_enabled()
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    assert public_mode()
    assert limits().max_faces == 10 and limits().max_analyses == 1 and limits().max_megapixels == 24
    assert not training_enabled(), "public mode implies training off"
    with pytest.raises(TrainingDisabled, match="FER_STUDIO_PUBLIC=1"):
        require_training()
    monkeypatch.setenv("FER_STUDIO_MAX_FACES", "4")
    assert limits().max_faces == 4
    assert "up to 4 faces per photo" in limits().describe()
    monkeypatch.setenv("FER_STUDIO_MAX_FACES", "many")
    with pytest.raises(ValueError, match="FER_STUDIO_MAX_FACES must be a whole number"):
        limits()


def test_gate_admits_the_limit_and_queues_the_rest_in_order() -> None:
    gate = Gate(2, poll_seconds=0.05)
    release = threading.Event()
    admitted: list[int] = []
    told: dict[int, list[Place]] = {n: [] for n in range(4)}

    def visitor(number: int) -> None:
        with gate.admit(told[number].append):
            admitted.append(number)
            release.wait(10)

    threads = []
    for number in range(4):
        threads.append(threading.Thread(target=visitor, args=(number,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while gate.running + gate.waiting < number + 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # arrive in order
    deadline = time.monotonic() + 5
    while not (told[2] and told[3]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(admitted) == [0, 1] and gate.running == 2 and gate.waiting == 2
    assert told[0] == told[1] == [], "the first two never wait"
    assert told[2][-1].ahead == 2 and told[3][-1].ahead == 3, "others ahead: the two running, then the queue"
    release.set()
    for thread in threads:
        thread.join(10)
    assert admitted[:2] in ([0, 1], [1, 0]) and admitted[2:] == [2, 3]
    assert gate.running == 0 and gate.waiting == 0


def test_gate_gives_up_the_place_of_a_waiter_that_stops() -> None:
    gate = Gate(1, poll_seconds=0.05)
    with gate.admit():

        def leave(place: Place) -> None:
            raise KeyboardInterrupt  # a page run stopped by its visitor while waiting

        with pytest.raises(KeyboardInterrupt), gate.admit(leave):
            pass
        assert gate.waiting == 0
    with gate.admit():
        assert gate.running == 1


def test_bounded_cache_drops_least_recently_used_and_expired() -> None:
    now = [0.0]
    cache = BoundedCache(100, ttl=60, clock=lambda: now[0])
    assert cache.put("a", "A", 40) and cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # now b is the least recently used
    assert cache.put("c", "C", 40)
    assert cache.get("b") is None and cache.get("a") == "A" and cache.nbytes == 80
    assert not cache.put("huge", "H", 101) and cache.get("huge") is None
    now[0] = 61.0
    cache.expire()
    assert len(cache) == 0 and cache.nbytes == 0


def test_faces_beyond_the_limit_are_counted_not_dropped_silently(
    tiny_registry: list[str], detector, astronaut: Image.Image
) -> None:
    photo = group_photo(astronaut, 5)
    everything = analyze(photo, [load_model("tiny_a")], detector, cam_method=None)
    assert len(everything.faces) == 5 and everything.faces_left_out == 0
    limited = analyze(photo, [load_model("tiny_a")], detector, cam_method=None, max_faces=3)
    assert len(limited.faces) == 3 and limited.faces_left_out == 2
    assert limited.to_dict()["faces_left_out"] == 2
    assert [f.face.box for f in limited.faces] == [f.face.box for f in everything.faces[:3]], "the largest"


def test_big_photos_are_refused_above_max_pixels_and_worked_on_downscaled(
    tiny_registry: list[str], detector, astronaut: Image.Image
) -> None:
    big = jpeg(astronaut.resize((2500, 2500)))
    with pytest.raises(ImageError, match="the limit is 5 megapixels"):
        analyze(big, [], detector, cam_method=None, max_pixels=5_000_000)
    result = analyze(big, [load_model("tiny_a")], detector, cam_method=None, work_side=1000)
    assert result.image.size == (1000, 1000) and len(result.faces) == 1
    assert result.nbytes() < 1000 * 1000 * 3 + 10_000
    assert fit_within(astronaut, 2000) is astronaut


def test_analysis_cache_stays_under_its_bound_with_many_large_photos(
    tiny_registry: list[str], monkeypatch: pytest.MonkeyPatch, astronaut: Image.Image
) -> None:
    """ui.resources keeps what a rerun needs (a downscaled photo, crops, probabilities), within FER_STUDIO_CACHE_MB."""
    import streamlit as st

    from core.models.registry import list_models
    from ui import resources
    from ui.display import model_keys

    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    monkeypatch.setenv("FER_STUDIO_CACHE_MB", "4")
    monkeypatch.setenv("FER_STUDIO_WORK_SIDE", "800")
    st.cache_resource.clear()
    shared.reset()
    try:
        keys = model_keys(list_models(), tiny_registry)
        large = astronaut.resize((2000, 2000))  # 4 megapixels, 12 MB decoded
        sizes = []
        for quality in range(80, 84):  # four different uploads
            data = jpeg(large, quality)
            result = resources.analysis(data, keys, False)
            assert result.image.size == (800, 800) and len(result.faces) == 1
            sizes.append(result.nbytes())
            assert resources.results().nbytes <= 4 * 2**20, "the bound holds after every photo"
        assert min(sizes) > 800 * 800 * 3, "an entry states at least its photo's pixels"
        assert len(resources.results()) == 4 * 2**20 // min(sizes), "as many as fit, the oldest dropped"
        maps = resources.heatmaps(data, keys, False, "gradcam", None)
        assert maps[0]["tiny_a"].shape == (48, 48) and resources.results().nbytes <= 4 * 2**20
    finally:
        st.cache_resource.clear()
        shared.reset()


def test_photo_bytes_are_not_kept_and_results_are_shared(
    tiny_registry: list[str], astronaut: Image.Image
) -> None:
    """A second visitor with the same photo gets the first one's result (no second analysis)."""
    import streamlit as st

    from core.models.registry import list_models
    from ui import resources
    from ui.display import model_keys

    st.cache_resource.clear()
    shared.reset()
    try:
        keys = model_keys(list_models(), tiny_registry)
        data = png(astronaut)
        first = resources.analysis(data, keys, False)
        assert resources.analysis(bytes(bytearray(data)), keys, False) is first
        assert not any(isinstance(part, bytes) for key in resources.results()._entries for part in key), (
            "cached under a digest, not the upload's bytes"
        )
        assert np.asarray(first.image).shape == (512, 512, 3)
    finally:
        st.cache_resource.clear()
        shared.reset()
