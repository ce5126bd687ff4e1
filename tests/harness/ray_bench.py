"""predict locally vs predict --ray on FER2013 val faces as image files (issue 23; docs/scale.md).

    python -m tests.harness.ray_bench [--count 2000] [--cpus 2] [--batch-size 8] [--local-count N] [--json]

Three measurements on the same files, models (the default pair) and detector settings:
- local: core.batch.predict_files in this process (torch on every CPU), models loaded beforehand;
- ray: core.scale.ray_batch.predict_on_ray on a local Ray with `cpus` CPUs (one actor per CPU, one
  torch thread each), from starting Ray to the last row written, and in steady state (first to last
  result);
- overhead: the same number of files in the same batches through a pool of actors that do nothing,
  i.e. what Ray Data costs per batch (scheduling, serialising, the driver receiving the batch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.batch import image_paths, predict_files
from core.faces.detection import PHOTO_MIN_FACE_SIZE, FaceDetector
from core.models.loading import load_model
from core.paths import DATA_DEFAULT
from core.scale import DEFAULT_BATCH_SIZE
from core.scale.ray_batch import PredictSettings, predict_on_ray
from tests.harness.bench import _default_names, markdown_table


def val_files(count: int, data: str = DATA_DEFAULT, seed: int = 0) -> list[Path]:
    """`count` FER2013 val faces (48x48 JPEG files), a fixed random choice in file order."""
    files = image_paths([str(Path(data) / "val")])
    chosen = np.random.default_rng(seed).choice(len(files), min(count, len(files)), replace=False)
    return [files[i] for i in sorted(chosen)]


def bench_local(files: list[Path], names: list[str], threads: int | None = None) -> dict[str, Any]:
    """predict_files over every file in this process, with torch's default threads or `threads`."""
    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    models = [load_model(name) for name in names]
    detector = FaceDetector(PHOTO_MIN_FACE_SIZE)
    loaded = time.perf_counter()
    statuses: dict[str, int] = {}
    for result in predict_files(files, models, detector):
        statuses[result.status] = statuses.get(result.status, 0) + 1
    seconds = time.perf_counter() - loaded
    used = torch.get_num_threads()
    torch.set_num_threads(default_threads)
    return {
        "load_s": loaded - started,
        "seconds": seconds,
        "images_per_s": len(files) / seconds,
        "torch_threads": used,
        "statuses": statuses,
    }


class _Nothing:
    """An actor that hands its batch back: what is left is Ray Data's own cost."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return batch


def bench_overhead(count: int, actors: int, batch_size: int) -> dict[str, Any]:
    """`count` rows in batches of batch_size through `actors` do-nothing actors (Ray must be running)."""
    import ray

    from core.scale.session import quiet_ray_data

    quiet_ray_data()
    names = [{"image": f"face{i:05d}.jpg"} for i in range(count)]
    blocks = max(actors, -(-count // batch_size))
    dataset = ray.data.from_items(names, override_num_blocks=blocks).map_batches(
        _Nothing, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1
    )
    started = time.perf_counter()
    stamps = [time.perf_counter() for _ in dataset.iter_batches(batch_size=None)]
    batches = len(stamps)
    steady = stamps[-1] - stamps[0]
    return {
        "batches": batches,
        "seconds": time.perf_counter() - started,
        "steady_s": steady,
        "ms_per_batch": 1000 * steady / max(batches - 1, 1),
    }


def bench_ray(files: list[Path], names: list[str], cpus: int, batch_size: int) -> dict[str, Any]:
    """predict_on_ray over the files on a local Ray of `cpus` CPUs, and the do-nothing pipeline."""
    import logging

    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # 127.0.0.1 (core.scale.session)
    started = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    ray_up = time.perf_counter() - started
    try:
        with tempfile.TemporaryDirectory() as scratch:
            listing = Path(scratch) / "inputs.txt"
            listing.write_text("".join(f"{path}\n" for path in files))
            stamps: list[float] = []
            run_started = time.perf_counter()
            summary = predict_on_ray(
                [str(listing)],
                Path(scratch) / "out",
                PredictSettings(tuple(names), PHOTO_MIN_FACE_SIZE),
                actors=cpus,
                batch_size=batch_size,
                on_record=lambda record: stamps.append(time.perf_counter()),
            )
            run_seconds = time.perf_counter() - run_started
        overhead = bench_overhead(len(files), cpus, batch_size)
    finally:
        ray.shutdown()
    steady = stamps[-1] - stamps[0]
    first_batch = min(batch_size, len(stamps))
    return {
        "ray_start_s": ray_up,
        "seconds": run_seconds,
        "images_per_s": len(files) / run_seconds,
        "first_result_s": stamps[0] - run_started,
        "steady_images_per_s": (len(stamps) - first_batch) / steady if steady else 0.0,
        "actors": summary.actors,
        "batches": summary.batches,
        "batch_size": batch_size,
        "busy_s_per_image": summary.busy_seconds / max(summary.written, 1),
        "statuses": dict(summary.statuses),
        "overhead": overhead,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.ray_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--local-count",
        type=int,
        default=None,
        help="files for the local run at torch's default threads (default: all)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = _default_names()
    files = val_files(args.count)
    local = bench_local(files[: args.local_count or len(files)], names)
    single = bench_local(files, names, threads=1)
    on_ray = bench_ray(files, names, args.cpus, args.batch_size)
    result = {
        "files": len(files),
        "models": names,
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}",
        "load_average": os.getloadavg(),
        "local": local,
        "local_one_thread": single,
        "ray": on_ray,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    overhead = on_ray["overhead"]
    print(
        markdown_table(
            ["path", "images", "wall s", "images/s", "steady images/s", "notes"],
            [
                [
                    "local (predict_files)",
                    str(sum(local["statuses"].values())),
                    f"{local['seconds']:.1f}",
                    f"{local['images_per_s']:.1f}",
                    f"{local['images_per_s']:.1f}",
                    f"models and MTCNN loaded in {local['load_s']:.1f} s beforehand; torch {local['torch_threads']} threads",
                ],
                [
                    "local, one torch thread",
                    str(len(files)),
                    f"{single['seconds']:.1f}",
                    f"{single['images_per_s']:.1f}",
                    f"{single['images_per_s']:.1f}",
                    "what one core does: the per-image cost an actor has",
                ],
                [
                    f"ray ({on_ray['actors']} actors, batches of {on_ray['batch_size']})",
                    str(len(files)),
                    f"{on_ray['seconds']:.1f}",
                    f"{on_ray['images_per_s']:.1f}",
                    f"{on_ray['steady_images_per_s']:.1f}",
                    f"Ray started in {on_ray['ray_start_s']:.1f} s before; first row after {on_ray['first_result_s']:.1f} s; "
                    f"{1000 * on_ray['busy_s_per_image']:.1f} ms of actor time per image",
                ],
            ],
        )
    )
    print(
        f"\nRay Data alone (do-nothing actors, {overhead['batches']} batches): "
        f"{overhead['ms_per_batch']:.2f} ms per batch in steady state, {overhead['seconds']:.1f} s in all"
    )
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
