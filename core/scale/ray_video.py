"""`video A.mp4 B.mp4 ... --ray --out DIR`: many video files at once, one per actor call.

A video is one sequence (tracking and smoothing carry state from frame to frame), so a video is not
split; the actor pool (ActorVideo: the models and the video detector loaded once per actor) runs
core.video.analysis.analyze_video on whole files, as `video` does locally. The driver writes each
video's CSV (what `video --csv` writes) to DIR/csv/, then one line in DIR/videos.jsonl (the
per-track summary, frames, tracks, or the error of a file that is no usable video). The JSONL is the
record of what is done: a re-run skips the videos that have their line; DIR/settings.json refuses
other settings, as for predict --ray.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.jobs.ray_runner import worker_env
from core.scale.results import keep_settings, read_as_written
from core.scale.session import quiet_ray_data, ray_error_line, ray_session

VIDEO_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov", ".avi", ".mkv", ".gif")
JSONL_NAME = "videos.jsonl"


@dataclass(frozen=True)
class VideoRunSettings:
    """What each actor builds once, and how every video is analysed (the `video` options)."""

    models: tuple[str, ...]
    every: int
    smoothing: str
    min_face_size: int
    detect_side: int
    max_seconds: float
    allow_any_format: bool = False


def video_files(paths: Sequence[str]) -> list[str]:
    """Files named, videos found (recursively, by suffix) in folders, and the lines of .txt/.lst lists."""
    found: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [
                str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
            ]
        elif path.suffix.lower() in (".txt", ".lst") and path.is_file():
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            found += video_files([line for line in lines if line and not line.startswith("#")])
        elif path.exists():
            found.append(raw)
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder")
    if not found:
        raise ValueError("no videos found in " + ", ".join(paths))
    return found


def csv_name(video: str) -> str:
    """The file name of a video's CSV: its stem and a digest of its path (two clip.mp4 stay apart)."""
    return f"{Path(video).stem}-{hashlib.sha1(video.encode()).hexdigest()[:8]}.csv"


class ActorVideo:
    """One actor of the pool: the models and the video detector, loaded once; analyses whole videos."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import torch

        from core.models.loading import load_model
        from core.video.analysis import video_detector

        self.settings = VideoRunSettings(**{**settings, "models": tuple(settings["models"])})
        torch.set_num_threads(1)
        self.models = [load_model(name) for name in self.settings.models]
        self.detector = video_detector(self.settings.min_face_size, detect_side=self.settings.detect_side)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from core.video.analysis import VideoSettings, analyze_video
        from core.video.codec import VideoLimits

        limits = VideoLimits(max_seconds=self.settings.max_seconds)
        if self.settings.allow_any_format:
            limits = dataclasses.replace(limits, formats=None)
        options = VideoSettings(every=self.settings.every, smoothing=self.settings.smoothing, limits=limits)
        records, tables = [], []
        for video in (str(v) for v in batch["video"]):
            record: dict[str, Any] = {"video": video, "error": None}
            try:
                result = analyze_video(video, self.models, self.detector, options)
            except (ValueError, OSError) as err:  # VideoError: not a usable video
                record["error"], table = str(err), ""
            else:
                record.update(frames=result.frames, tracks=len(result.tracks()), summary=result.summary())
                record["csv"], table = f"csv/{csv_name(video)}", result.to_csv()
            records.append(json.dumps(record))
            tables.append(table)
        return {"video": [str(v) for v in batch["video"]], "record": records, "table": tables}


def videos_on_ray(
    paths: Sequence[str],
    out: str | Path,
    settings: VideoRunSettings,
    address: str | None = None,
    actors: int | None = None,
) -> dict[str, Any]:
    """Analyse every video not yet in `out` on Ray; returns counts (found, skipped, done, failed) and seconds."""
    from tqdm import tqdm

    videos = video_files(paths)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    keep_settings(folder, asdict(settings))
    record_path = folder / JSONL_NAME
    done = _done(record_path)
    todo = [video for video in videos if video not in done]
    counts: dict[str, Any] = {
        "found": len(videos),
        "skipped": len(videos) - len(todo),
        "done": 0,
        "failed": 0,
    }
    started = time.perf_counter()
    (folder / "csv").mkdir(exist_ok=True)
    with ray_session(address), open(record_path, "a", encoding="utf-8") as records:
        import ray

        quiet_ray_data()
        if todo:
            size = max(1, min(len(todo), actors or int(ray.cluster_resources().get("CPU", 1))))
            dataset = ray.data.from_items([{"video": v} for v in todo], override_num_blocks=len(todo))
            mapped = dataset.map_batches(
                ActorVideo,
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=size),
                fn_constructor_kwargs={"settings": asdict(settings)},
                num_cpus=1,
                batch_format="numpy",
                runtime_env={"env_vars": {**worker_env(), "OMP_NUM_THREADS": "1"}},
            )
            try:
                with tqdm(total=len(todo), unit="video", disable=None) as bar:
                    for row in mapped.iter_rows():
                        record = json.loads(row["record"])
                        if record["video"] in done:
                            continue
                        if record.get("csv"):
                            _write_atomically(folder / record["csv"], str(row["table"]))
                        records.write(json.dumps(record) + "\n")
                        records.flush()
                        done.add(record["video"])
                        counts["failed" if record["error"] else "done"] += 1
                        bar.update()
            except ray.exceptions.RayError as err:
                from core.scale.ray_batch import RayRunError

                raise RayRunError(f"the run on Ray failed: {ray_error_line(err)}") from err
    counts["seconds"] = time.perf_counter() - started
    return counts


def _done(path: Path) -> set[str]:
    """The videos with a whole line in videos.jsonl; a torn last line is dropped (that video is redone)."""
    if not path.exists():
        return set()
    kept, done = [], set()
    for line in read_as_written(path).splitlines(keepends=True):
        try:
            video = json.loads(line)["video"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if line.endswith("\n") and video not in done:
            done.add(video)
            kept.append(line)
    if "".join(kept) != read_as_written(path):
        _write_atomically(path, "".join(kept))
    return done


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
