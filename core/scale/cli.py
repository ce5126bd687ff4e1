"""The `--ray` options of `python -m core predict`, and the command that runs them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from core.scale import DEFAULT_BATCH_SIZE


def add_ray_options(
    parser: argparse.ArgumentParser, writes_folder: bool = True, batches: bool = True
) -> None:
    """--ray [ADDRESS], --actors, --batch-size (batches) and --out (for a command whose rows go to a folder)."""
    group = parser.add_argument_group("on Ray (pip install -r requirements-ray.txt; see docs/scale.md)")
    group.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: the cluster at ADDRESS (or $RAY_ADDRESS), else a local Ray started for the run; "
        "put it after the paths, or write --ray=ADDRESS",
    )
    if writes_folder:
        group.add_argument(
            "--out",
            default=None,
            metavar="DIR",
            help="with --ray: write predictions.csv and predictions.jsonl here; a re-run skips what is done",
        )
    group.add_argument("--actors", type=int, default=None, help="with --ray: actors (default: one per CPU)")
    if batches:
        group.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="with --ray: files per actor call"
        )


def run_predict_on_ray(args: argparse.Namespace, models: Sequence[str]) -> int:
    """predict --ray: 0 when every file was read, 2 (after every row) when some were not."""
    from core.faces.detection import PHOTO_MIN_FACE_SIZE
    from core.scale.ray_batch import PredictSettings, predict_on_ray

    if not args.out:
        raise ValueError("--ray writes its results to a folder: give --out DIR")
    if args.json or args.csv:
        raise ValueError(
            "--ray writes predictions.csv and predictions.jsonl to --out; leave out --json and --csv"
        )
    if args.batch_size < 1 or (args.actors is not None and args.actors < 1):
        raise ValueError("--batch-size and --actors must be 1 or more")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError("--ray needs Ray: pip install -r requirements-ray.txt") from None
    settings = PredictSettings(
        tuple(models),
        args.min_face_size or PHOTO_MIN_FACE_SIZE,
        args.threshold,
        args.max_faces,
        args.align,
        args.flip_tta,
    )
    summary = predict_on_ray(args.paths, args.out, settings, args.ray or None, args.actors, args.batch_size)
    print(summary.line(), file=sys.stderr)
    if summary.unreadable:
        print(
            f"error: {summary.unreadable} of {summary.written} images could not be read (see their rows)",
            file=sys.stderr,
        )
        return 2
    return 0


def check_evaluate_on_ray(args: argparse.Namespace) -> None:
    """evaluate --ray works with --detect-faces and without --record; ValueError otherwise."""
    if not args.detect_faces or args.record:
        raise ValueError(
            "evaluate --ray spreads the face detection of --detect-faces over Ray (48x48 crops are classified "
            "locally in seconds); use it with --detect-faces and without --record"
        )
    if args.batch_size < 1 or (args.actors is not None and args.actors < 1):
        raise ValueError("--batch-size and --actors must be 1 or more")


def evaluated_faces_on_ray(args: argparse.Namespace) -> Any:
    """evaluate --ray: the faces of --detect-faces, found by an actor pool (core.scale.ray_evaluate)."""
    from core.scale.ray_evaluate import detected_faces_on_ray

    return detected_faces_on_ray(args.data, args.split, args.ray or None, args.actors, args.batch_size)


def run_videos_on_ray(args: argparse.Namespace, models: Sequence[str]) -> int:
    """video --ray: 0 when every video was analysed, 2 (after every line) when some could not be."""
    from core.faces.detection import VIDEO_MIN_FACE_SIZE
    from core.scale.ray_video import VideoRunSettings, videos_on_ray

    if not args.out:
        raise ValueError("--ray writes its results to a folder: give --out DIR")
    if args.csv or args.json or args.annotated:
        raise ValueError(
            "--ray writes each video's CSV and videos.jsonl to --out; leave out --csv, --json, --annotated"
        )
    if args.actors is not None and args.actors < 1:
        raise ValueError("--actors must be 1 or more")
    settings = VideoRunSettings(
        tuple(models),
        args.every,
        args.smooth,
        args.min_face_size or VIDEO_MIN_FACE_SIZE,
        args.detect_side,
        args.max_seconds,
        args.allow_any_format,
    )
    counts = videos_on_ray(args.path, args.out, settings, args.ray or None, args.actors)
    print(
        f"ray: {counts['done'] + counts['failed']} videos in {counts['seconds']:.1f} s: {counts['done']} analysed, "
        f"{counts['failed']} unusable; {counts['skipped']} skipped (already in {args.out})",
        file=sys.stderr,
    )
    if counts["failed"]:
        print(
            f"error: {counts['failed']} videos could not be analysed (see {args.out}/videos.jsonl)",
            file=sys.stderr,
        )
        return 2
    return 0
