"""Benchmark (not a test): server memory while 3 sessions analyse 2 large PNGs each, as in issue 11.

    .venv/bin/python -m tests.harness.upload_memory                       # 49-megapixel photos, default limits
    SIDE=4890 FER_STUDIO_PUBLIC=1 .venv/bin/python -m tests.harness.upload_memory   # public mode's 24-megapixel limit

Runs ui.resources' analysis() and heatmaps() (what the Analyze page calls) in 3 threads
with the registered default models, and prints resident memory: idle, peak, and after.
"""

from __future__ import annotations

import gc
import io
import os
import threading
import time
from pathlib import Path

from PIL import Image

from core.models.registry import list_models
from ui import resources
from ui.display import default_pair, model_keys, sample_png


def megabytes(field: str) -> int:
    """VmRSS or VmHWM (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) // 1024
    raise KeyError(field)


def main() -> None:
    side = int(os.environ.get("SIDE", "7000"))
    cards = list_models()
    keys = model_keys(cards, list(default_pair([card["name"] for card in cards])))
    face = Image.open(io.BytesIO(sample_png())).convert("RGB").resize((1500, 1500))
    photos = []
    for number in range(6):
        canvas = Image.new("RGB", (side, side), (90 + number, 90, 90))
        canvas.paste(face, (500 + 300 * number, 800))
        buffer = io.BytesIO()
        canvas.save(buffer, "PNG")
        photos.append(buffer.getvalue())
    del canvas
    resources.analysis(sample_png(), keys, False)
    resources.heatmaps(sample_png(), keys, False, "gradcam", None)
    gc.collect()
    idle = megabytes("VmRSS")
    print(f"photos: 6 PNGs of {side * side / 1e6:.0f} MP, {sum(map(len, photos)) / 1e6:.1f} MB in all")
    print(f"idle (models loaded, the sample analysed): {idle} MB")

    def session(mine: list[bytes]) -> None:
        for data in mine:
            resources.analysis(data, keys, False)
            resources.heatmaps(data, keys, False, "gradcam", None)

    started = time.perf_counter()
    threads = [threading.Thread(target=session, args=(photos[2 * s : 2 * s + 2],)) for s in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()
    after = megabytes("VmRSS")
    print(
        f"3 sessions x 2 photos: {time.perf_counter() - started:.1f} s, peak {megabytes('VmHWM')} MB, "
        f"after {after} MB (+{after - idle} MB over idle)"
    )
    cache = resources.results()
    print(
        f"result cache: {len(cache)} entries, {cache.nbytes / 2**20:.1f} MB of {cache.max_bytes / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    main()
