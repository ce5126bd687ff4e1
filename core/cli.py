"""Command line: predict, train, evaluate, clusters (and jobs). Errors are one clear line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from core.paths import DATA_DEFAULT
from core.training.config import add_train_options


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: each command's flags are added beside the function that runs it."""
    from core.jobs.cli import add_jobs_parser

    parser = argparse.ArgumentParser(prog="python -m core", description="Facial emotion recognition studio")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_parser in (
        add_train_parser,
        add_predict_parser,
        add_explain_parser,
        add_saliency_study_parser,
        add_evaluate_parser,
        add_clusters_parser,
        add_register_parser,
        add_framing_parser,
        add_report_parser,
        add_video_parser,
        add_calibrate_parser,
        add_robustness_parser,
        add_models_parser,
        add_bench_parser,
        add_jobs_parser,
    ):
        add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else list(argv)  # what a card records as the command
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, LookupError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train (or resume) a model")
    parser.add_argument(
        "--run-dir", required=True, help="run folder; an existing checkpoint there is resumed"
    )
    add_train_options(parser)
    parser.add_argument("--save-as", default=None, help="register the best weights under this name")
    parser.add_argument(
        "--models-dir", default=None, help="where --save-as writes (default: $FER_STUDIO_HOME/models)"
    )


def run_train(args: argparse.Namespace) -> int:
    from core.training.config import config_from_args
    from core.training.loop import train

    config = config_from_args(args)

    def report(row: dict) -> None:
        print(
            f"epoch {row['epoch']:3d}  loss {row['train_loss']:.3f}  val acc {row['val_accuracy']:.4f}  "
            f"macro-F1 {row['val_macro_f1']:.4f}  {row['images_per_second']:.0f} img/s  {row['seconds']:.1f} s",
            flush=True,
        )

    summary = train(config, args.run_dir, on_epoch=report)
    print(f"best val accuracy {summary['best']['val_accuracy']:.4f} at epoch {summary['best']['epoch']}")
    if args.save_as:
        from core.training.register import register_run

        path = register_run(
            Path(args.run_dir),
            args.save_as,
            Path(args.models_dir) if args.models_dir else None,
            command=" ".join(["python -m core", *sys.argv[1:]]),
        )
        print(f"registered {args.save_as}: {path}")
    return 0


def _models(names: Sequence[str] | None) -> list:
    """The named models; by default baseline and masked (or the first two), leaving out broken ones
    with a warning line each. A named model that cannot be loaded is an error."""
    from core.models.loading import load_model
    from core.models.registry import ModelLoadError, scan_models

    if names:
        return [load_model(name) for name in names]
    cards, broken = scan_models()
    for model in broken:
        print(f"warning: {model.reason}; left out", file=sys.stderr)
    registered = [card["name"] for card in cards]
    names = [n for n in ("baseline", "masked") if n in registered] or registered[:2]
    loaded = []
    for name in names:
        try:
            loaded.append(load_model(name))
        except ModelLoadError as err:
            print(f"warning: {err}; left out", file=sys.stderr)
    if not loaded:
        raise LookupError("no usable model is registered; train one with `python -m core train`")
    return loaded


def add_predict_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="find faces in photos and predict their emotions")
    parser.add_argument("paths", nargs="+", help="images or folders of images")
    parser.add_argument(
        "--models", nargs="+", default=None, help="registered model names (default: baseline masked)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON with boxes and per-class probabilities"
    )
    parser.add_argument(
        "--csv",
        nargs="?",
        const="-",
        metavar="OUT",
        help="CSV rows (one per face and model; unreadable files and photos without a face get one "
        "row with their status) to OUT, or to stdout instead of the table",
    )
    parser.add_argument("--flip-tta", action="store_true", help="average with the mirrored face")
    parser.add_argument(
        "--min-face-size",
        type=int,
        default=None,
        help="smallest face in pixels (default: core.faces.detection.PHOTO_MIN_FACE_SIZE)",
    )
    parser.add_argument(
        "--align",
        action="store_true",
        help="turn each face's crop so its eyes are level (default: upright)",
    )
    parser.add_argument("--threshold", type=float, default=0.9, help="face detector score threshold")
    parser.add_argument("--max-faces", type=int, default=20)
    from core.scale.cli import add_ray_options  # issue 23: predict on Ray

    add_ray_options(parser)


def run_predict(args: argparse.Namespace) -> int:
    """Stream one result per file; 0 when every file was read, 2 (after every row) when some were not."""
    from core.batch import (
        CsvWriter,
        JsonWriter,
        ResultWriter,
        TableWriter,
        image_paths,
        predict_files,
        progress_bar,
    )
    from core.faces.detection import FaceDetector

    if args.ray is not None:  # issue 23: predict on Ray
        from core.scale.cli import run_predict_on_ray

        return run_predict_on_ray(args, [model.name for model in _models(args.models)])
    if args.json and args.csv == "-":
        raise ValueError("--json and --csv both write to stdout: give --csv a file name")
    paths = image_paths(args.paths)
    models = _models(args.models)
    from core.faces.detection import PHOTO_MIN_FACE_SIZE

    detector = FaceDetector(
        args.min_face_size or PHOTO_MIN_FACE_SIZE, args.threshold, args.max_faces, align=args.align
    )
    with ExitStack() as stack:
        to_stdout = JsonWriter if args.json else CsvWriter if args.csv == "-" else TableWriter
        writers: list[ResultWriter] = [to_stdout(sys.stdout)]
        if args.csv and args.csv != "-":
            writers.append(CsvWriter(stack.enter_context(open(args.csv, "w", newline="", encoding="utf-8"))))
        bar = stack.enter_context(progress_bar(len(paths)))
        unreadable = 0
        try:
            for result in predict_files(paths, models, detector, args.flip_tta):
                unreadable += result.error is not None
                with bar.external_write_mode():
                    for writer in writers:
                        writer.write(result)
                bar.update()
        finally:
            for writer in writers:
                writer.close()
    if unreadable:
        print(
            f"error: {unreadable} of {len(paths)} images could not be read (see their rows)", file=sys.stderr
        )
        return 2
    return 0


def add_explain_parser(commands: argparse._SubParsersAction) -> None:
    from core.explain.compare import FILLS
    from core.explain.saliency import CAM_METHODS

    parser = commands.add_parser(
        "explain", help="compare where two models look on each face: parts, agreement, deletion vs random"
    )
    parser.add_argument("paths", nargs="+", help="images or folders of images")
    parser.add_argument(
        "--models", nargs=2, default=None, metavar=("A", "B"), help="default: baseline masked"
    )
    parser.add_argument("--method", default="gradcam", choices=sorted(CAM_METHODS), help="saliency method")
    parser.add_argument(
        "--layer", default=None, help="Grad-CAM layer: block1 (finest) .. blockN (the last, default)"
    )
    parser.add_argument("--steps", type=int, default=10, help="deletion steps (fractions 0, 1/steps, ..., 1)")
    parser.add_argument("--random-maps", type=int, default=3, help="random maps averaged for the baseline")
    parser.add_argument("--fill", default="blur", choices=FILLS, help="what removed pixels are replaced with")
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per face")
    parser.add_argument(
        "--out", default=None, help="folder for PNGs: both overlays, difference, deletion curves"
    )


def run_explain(args: argparse.Namespace) -> int:
    """One row per face (or per file without one); 0 when every file had a face, 2 otherwise."""
    from core.batch import explain_files, image_paths, progress_bar
    from core.explain.figures import save_comparison
    from core.faces.detection import FaceDetector

    paths = image_paths(args.paths)
    models = _models(args.models)
    if len(models) != 2:
        raise LookupError("explain compares two models: name them with --models A B")
    pair = (models[0], models[1])
    if args.layer:
        from core.models.architectures import cam_layers

        for model in pair:
            cam_layers(model.module, args.layer)  # ValueError naming the choices, before any work
    rows = explain_files(
        paths, pair, FaceDetector(), args.method, args.layer, args.steps, args.random_maps, args.fill
    )
    failed, first = 0, True
    if args.json:
        print("[")
    with progress_bar(len(paths)) as bar:
        for row in rows:
            failed += row.error is not None
            with bar.external_write_mode():
                if args.json:
                    print(("" if first else ",\n") + json.dumps(row.to_dict(), indent=2), end="", flush=True)
                elif row.comparison is None:
                    print(f"{row.path}: {row.error}", flush=True)
                else:
                    print(_explain_line(row), flush=True)
            first = False
            if args.out and row.comparison is not None:
                save_comparison(row.comparison, Path(args.out), f"{row.path.stem}_face{row.face}")
            if row.face in (None, 1):
                bar.update()
    if args.json:
        print("\n]")
    if failed:
        print(f"error: {failed} of {len(paths)} images gave no comparison (see their rows)", file=sys.stderr)
        return 2
    return 0


def _explain_line(row: Any) -> str:
    """A face's comparison as two lines: the numbers, then the sentence."""
    from core.labels import EMOTIONS

    comparison = row.comparison
    numbers = "  ".join(
        f"{name}: {EMOTIONS[comparison.targets[name]]} deletion AUC {comparison.deletion[name].auc:.2f} "
        f"(random {comparison.random_deletion[name].auc:.2f})"
        for name in comparison.names
    )
    agree = comparison.agreement
    return (
        f"{row.path}  face {row.face}  {numbers}  spearman {agree['spearman']:.2f}  "
        f"top-20% IoU {agree['top20_iou']:.2f}\n  {comparison.sentence}"
    )


def add_saliency_study_parser(commands: argparse._SubParsersAction) -> None:
    from core.evaluation.saliency_study import DEFAULT_LIMIT, LAYER_FACES, SANITY_FACES
    from core.explain.compare import FILLS
    from core.explain.saliency import CAM_METHODS

    parser = commands.add_parser(
        "saliency-study",
        help="where two models look per emotion on FER2013 val, the paper's claim, faithfulness, sanity",
    )
    parser.add_argument(
        "--models", nargs=2, default=None, metavar=("A", "B"), help="default: baseline masked"
    )
    parser.add_argument("--method", default="gradcam", choices=sorted(CAM_METHODS))
    parser.add_argument("--layer", default=None, help="Grad-CAM layer (default: the last block)")
    parser.add_argument("--data", default=DATA_DEFAULT, help="FER2013 folder or CSV (its val split is read)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="faces (a seeded random sample)")
    parser.add_argument("--layer-faces", type=int, default=LAYER_FACES, help="faces for the per-layer table")
    parser.add_argument("--sanity-faces", type=int, default=SANITY_FACES, help="faces for the sanity check")
    parser.add_argument("--steps", type=int, default=10, help="deletion steps")
    parser.add_argument("--fill", default="blur", choices=FILLS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-landmarks", action="store_true", help="typical landmarks for every face (no MTCNN)"
    )
    parser.add_argument("--record", action="store_true", help="store the study beside model A's card")
    parser.add_argument(
        "--draw",
        default=None,
        metavar="PNG",
        help="only draw the recorded study's mean maps per emotion to PNG",
    )


def run_saliency_study(args: argparse.Namespace) -> int:
    """Run the study, print it as Markdown; with --record store it for the pages (load_study)."""
    import time

    from core.data.datasets import load_dataset
    from core.evaluation.saliency_store import markdown, write_study
    from core.evaluation.saliency_study import recorded_at, run_study
    from core.faces.detection import FaceDetector
    from core.models.registry import find_model, home_dir
    from core.paths import portable_path

    if args.draw:
        return _draw_study(args.models or ["baseline", "masked"], Path(args.draw))
    models = _models(args.models)
    if len(models) != 2:
        raise LookupError("the study compares two models: name them with --models A B")
    data = load_dataset(args.data, args.split)
    detector = None if args.no_landmarks else FaceDetector(min_face_size=40, score_threshold=0.8)
    started = time.perf_counter()
    summary, maps = run_study(
        (models[0], models[1]),
        data,
        args.method,
        args.layer,
        args.limit,
        args.steps,
        args.fill,
        args.seed,
        args.layer_faces,
        args.sanity_faces,
        detector,
    )
    summary.update(
        data=portable_path(args.data),
        split=args.split,
        created=recorded_at(),
        command=" ".join(["python -m core", *(args.argv if args.argv is not None else sys.argv[1:])]),
    )
    summary["seconds"]["total"] = round(time.perf_counter() - started, 1)
    print(markdown(summary))
    print(f"\n{summary['faces']} faces in {summary['seconds']['total']:.0f} s", file=sys.stderr)
    if args.record:
        try:
            folder = find_model(models[0].name).parent
        except LookupError:
            folder = home_dir() / "models"
        print(f"recorded {write_study(summary, maps, folder)}", file=sys.stderr)
    return 0


def _draw_study(names: Sequence[str], path: Path) -> int:
    from core.evaluation.saliency_store import load_study
    from core.explain.figures import save_mean_maps

    a, b = names
    study = load_study(a, b)
    if study is None:
        raise LookupError(
            f"no recorded study of {a} and {b}: run `python -m core saliency-study --record` first"
        )
    for subset in ("all", "correct"):
        out = path.with_name(f"{path.stem}-{subset}{path.suffix}") if subset != "all" else path
        print(f"wrote {save_mean_maps(study.maps, (a, b), out, subset)}")
    return 0


def add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="evaluate a model on a labelled dataset")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--data", required=True, help="FER2013 folder/CSV or a folder root/emotion/*")
    parser.add_argument("--split", default=None, help="train/val/test for FER2013 data")
    parser.add_argument("--detect-faces", action="store_true", help="run face detection on full photos first")
    parser.add_argument("--no-occlusion", action="store_true", help="skip the occlusion test")
    parser.add_argument(
        "--regions-from",
        default=None,
        help="registered model whose attention regions (k-means, n=3) are removed one at a time",
    )
    parser.add_argument("--record", action="store_true", help="store the result in the model card")
    parser.add_argument("--json", action="store_true")
    from core.scale.cli import add_ray_options  # issue 23: --detect-faces on Ray

    add_ray_options(parser, writes_folder=False)


def run_evaluate(args: argparse.Namespace) -> int:
    from core.data.datasets import load_dataset
    from core.evaluation.metrics import evaluate_model
    from core.evaluation.record import evaluate_and_record, region_maps_from
    from core.labels import EMOTIONS
    from core.models.loading import load_model

    if args.ray is not None:  # issue 23
        from core.scale.cli import check_evaluate_on_ray

        check_evaluate_on_ray(args)
    if args.record:
        if args.detect_faces:
            raise ValueError("--record works with face crops only (no --detect-faces)")
        result = evaluate_and_record(
            args.model, args.data, args.split, not args.no_occlusion, args.regions_from
        )
    else:
        model = load_model(args.model)
        cropper = None
        if args.detect_faces:
            from core.faces.detection import FaceDetector, largest_face_crop

            detector = FaceDetector()
            cropper = lambda image: largest_face_crop(detector, image)  # noqa: E731
        if args.ray is not None:  # issue 23: the detection on Ray
            from core.scale.cli import evaluated_faces_on_ray

            faces = evaluated_faces_on_ray(args)
        else:
            faces = load_dataset(args.data, args.split, face_cropper=cropper)
        region_maps = region_maps_from(args.regions_from, faces) if args.regions_from else None
        result = evaluate_model(
            model.module,
            faces,
            model.preprocessing,
            not args.no_occlusion,
            region_maps=region_maps,
            temperature=model.temperature,
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    low, high = result["accuracy_95ci"]
    print(f"{args.model} on {args.data} ({result['count']} faces)")
    print(
        f"accuracy {result['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f})  macro-F1 {result['macro_f1']:.4f}"
    )
    print(f"{'class':10s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'support':>8s}")
    for name in EMOTIONS:
        row = result["per_class"][name]
        print(f"{name:10s} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} {row['support']:8d}")
    if "occlusion" in result:
        for region in ("eyes", "lower_face"):
            print(f"accuracy with {region} covered: {result['occlusion'][region]['accuracy']['all']:.4f}")
    for region, entry in result.get("region_removal", {}).items():
        if region != "clean":
            print(f"accuracy without attention {region.replace('_', ' ')}: {entry['accuracy']['all']:.4f}")
    return 0


def add_clusters_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("clusters", help="write the attention clusters of a face")
    parser.add_argument("image", help="a photo with a face, or a 48x48 face crop")
    parser.add_argument("--model", default="baseline", help="model whose Grad-CAM is the attention")
    parser.add_argument("-n", "--clusters", type=int, default=3)
    parser.add_argument("--lam", type=float, default=1.5)
    parser.add_argument("--alpha", type=float, default=1.2)
    parser.add_argument("--out", default=None, help="output PNG (default: IMAGE-clusters.png)")


def run_clusters(args: argparse.Namespace) -> int:
    from core.explain.regions import region_strip
    from core.faces.detection import FaceDetector, largest_face_crop
    from core.faces.images import decode_image, to_gray_array
    from core.models.loading import load_model

    image = decode_image(args.image)
    crop = to_gray_array(image) if image.size == (48, 48) else largest_face_crop(FaceDetector(), image)
    if crop is None:
        raise ValueError(f"{args.image}: no face found")
    model = load_model(args.model)
    picture = region_strip(crop, model, args.clusters, args.lam, args.alpha)
    out = Path(args.out) if args.out else Path(args.image).with_name(Path(args.image).stem + "-clusters.png")
    picture.save(out)
    print(f"wrote {out}")
    return 0


def add_register_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("register", help="register a training run's best weights as a model")
    parser.add_argument("run_dir")
    parser.add_argument("--name", required=True)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--train-command", default=None, help="the training command to record in the card")


def run_register(args: argparse.Namespace) -> int:
    from core.training.register import register_run

    path = register_run(
        Path(args.run_dir), args.name, Path(args.models_dir) if args.models_dir else None, args.train_command
    )
    print(f"registered {args.name}: {path}")
    return 0


def add_framing_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("framing", help="measure how MTCNN boxes sit in FER2013 crops")
    parser.add_argument("--data", default=DATA_DEFAULT)
    parser.add_argument("--count", type=int, default=300)


def run_framing(args: argparse.Namespace) -> int:
    import numpy as np

    from core.data.datasets import load_dataset
    from core.faces.detection import FaceDetector, measure_framing

    faces = load_dataset(args.data, "val")
    chosen = np.random.default_rng(0).choice(len(faces), min(args.count, len(faces)), replace=False)
    detector = FaceDetector(min_face_size=40, score_threshold=0.8)
    print(json.dumps(measure_framing(detector, faces.images[chosen]), indent=2))
    return 0


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("models", help="list registered models")


def run_models(args: argparse.Namespace) -> int:
    """List registered models, loading each; a broken one gets a warning line and exit code 1."""
    from core.models.loading import load_model
    from core.models.registry import ModelLoadError, scan_models

    cards, broken = scan_models()
    for model in broken:
        print(f"warning: {model.reason}; left out", file=sys.stderr)
    if not cards and not broken:
        print("no models registered")
    for card in cards:
        try:
            load_model(card["name"])
        except ModelLoadError as err:
            print(f"warning: {err}", file=sys.stderr)
            broken.append(card["name"])
            shown = "broken weights"
        else:
            first: dict[str, Any] = next(iter(card.get("evaluations", {}).values()), {})
            accuracy = first.get("accuracy")
            shown = "val accuracy " + (f"{accuracy:.4f}" if accuracy is not None else "not evaluated")
        print(
            f"{card['name']:20s} {card['architecture']:10s} {card.get('scheme', '?'):9s} {shown}  {card['path']}"
        )
    return 1 if broken else 0


def run_jobs(args: argparse.Namespace) -> int:
    from core.jobs.cli import run_jobs as run

    return run(args)


def add_report_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report", help="accuracy table (Markdown) and per-class chart from model cards"
    )
    parser.add_argument("--models", nargs="+", default=["baseline", "masked"])
    parser.add_argument("--evaluation", default="fer2013/val", help="which recorded evaluation")
    parser.add_argument("--chart", default="docs/per_class_accuracy.png", help="PNG to write ('' for none)")


def run_report(args: argparse.Namespace) -> int:
    from core.evaluation.report import accuracy_table, paired_summary, per_class_chart, region_table

    print(accuracy_table(args.models, args.evaluation))
    for extra in (paired_summary(args.models, args.evaluation), region_table(args.models, args.evaluation)):
        if extra:
            print(f"\n{extra}")
    if args.chart:
        print(f"\nchart written to {per_class_chart(args.models, Path(args.chart), args.evaluation)}")
    return 0


def add_video_parser(commands: argparse._SubParsersAction) -> None:
    from core.video.codec import DEFAULT_EVERY

    parser = commands.add_parser("video", help="emotions over time in a video file, per face track")
    parser.add_argument(
        "path", nargs="+", help="a video file: mp4, webm, mov, avi, animated GIF, ... (several with --ray)"
    )
    parser.add_argument(
        "--models", nargs="+", default=None, help="registered model names (default: baseline masked)"
    )
    parser.add_argument(
        "--every",
        type=int,
        default=DEFAULT_EVERY,
        help=f"detect faces every K-th frame and follow them in between (default {DEFAULT_EVERY})",
    )
    parser.add_argument(
        "--smooth",
        choices=("ema", "window", "none"),
        default="ema",
        help="smoothing over time (default: ema)",
    )
    parser.add_argument("--csv", default=None, help="write one row per frame, face and model here")
    parser.add_argument("--json", action="store_true", help="print JSON: per-track summary and every face")
    parser.add_argument("--annotated", default=None, help="write the video with boxes and labels here (.mp4)")
    parser.add_argument(
        "--min-face-size",
        type=int,
        help="smallest face in pixels (default: core.faces.detection.VIDEO_MIN_FACE_SIZE)",
    )
    parser.add_argument(
        "--detect-side",
        type=int,
        default=320,
        help="detect on a copy of each frame at most this many pixels wide",
    )
    parser.add_argument("--max-seconds", type=float, default=600, help="refuse longer videos")
    parser.add_argument(
        "--allow-any-format",
        action="store_true",
        help="read any container FFmpeg knows, not only mp4/mov/m4v, webm/mkv, avi and GIF "
        "(still no network; a format that lists other files, such as ffconcat, may then read them)",
    )
    from core.scale.cli import add_ray_options  # issue 23: many videos on Ray

    add_ray_options(parser, batches=False)


def run_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.video.analysis import VideoSettings, analyze_video, video_detector
    from core.video.codec import VideoLimits, probe

    if args.ray is not None:  # issue 23: many videos on Ray
        from core.scale.cli import run_videos_on_ray

        return run_videos_on_ray(args, [model.name for model in _models(args.models)])
    if len(args.path) > 1:
        raise ValueError("one video at a time; several go with --ray --out DIR")
    args.path = args.path[0]

    limits = VideoLimits(max_seconds=args.max_seconds)
    if args.allow_any_format:
        limits = dataclasses.replace(limits, formats=None)
    settings = VideoSettings(every=args.every, smoothing=args.smooth, limits=limits)
    info = probe(args.path, settings.limits)  # a bad file fails here, before models load
    models = _models(args.models)
    from core.faces.detection import VIDEO_MIN_FACE_SIZE

    detector = video_detector(args.min_face_size or VIDEO_MIN_FACE_SIZE, detect_side=args.detect_side)
    with tqdm(total=info.frame_count, unit="frame", file=sys.stderr, desc=Path(args.path).name) as bar:

        def advance(done: int, total: int | None) -> None:
            bar.update(1)

        result = analyze_video(args.path, models, detector, settings, args.annotated, on_frame=advance)
    if args.csv:
        Path(args.csv).write_text(result.to_csv())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"{args.path}: {result.frames} frames, {len(result.tracks())} face tracks")
    for row in result.summary():
        verdicts = "  ".join(
            f"{name}: {entry['dominant']} {entry['share'][entry['dominant']]:.0%} ({entry['changes']} changes)"
            for name, entry in row["models"].items()
        )
        print(
            f"track {row['track']}  {row['first_s']:.2f}-{row['last_s']:.2f} s  {row['frames']} frames  {verdicts}"
        )
    for path in (args.csv, args.annotated):
        if path:
            print(f"wrote {path}")
    return 0


def add_calibrate_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "calibrate", help="fit temperature scaling on labelled faces; ECE before and after (Markdown)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["baseline", "masked", "baseline+masked"],
        help="registered models, and averages like baseline+masked (default: baseline masked baseline+masked)",
    )
    parser.add_argument("--data", default=DATA_DEFAULT)
    parser.add_argument("--split", default="val")
    parser.add_argument(
        "--record", action="store_true", help="store each temperature and its measures in the model card"
    )
    parser.add_argument("--json", action="store_true", help="print everything measured as JSON")
    parser.add_argument(
        "--corruption",
        default=None,
        help="measure on faces damaged by this corruption (core.data.corruptions), or 'mixed': one at random per face",
    )
    parser.add_argument("--severity", type=int, default=2, help="severity of --corruption (1 to 3)")


def run_calibrate(args: argparse.Namespace) -> int:
    from core.evaluation.calibration import markdown_table
    from core.evaluation.record import calibrate_models
    from core.evaluation.report import average_table

    command = " ".join(["python -m core", *(sys.argv[1:] if args.argv is None else args.argv)])
    reports = calibrate_models(
        args.models, args.data, args.split, args.record, command, args.corruption, args.severity
    )
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0
    where = next(iter(reports.values()))["fitted_on"] if reports else args.split
    print(f"Temperature scaling on {where} (ECE: 15 equal-width confidence bins)\n")
    print(markdown_table(reports))
    for name, report in reports.items():
        if "accuracy" in report:
            print(f"\n{name} (average of calibrated probabilities) on {where}\n")
            eces = {"average": report["ece_after"]}
            eces.update({m: reports[m]["ece_after"] for m in report["members"] if m in reports})
            print(average_table(report["accuracy"], eces))
    if args.record:
        recorded = [name for name, report in reports.items() if "members" not in report]
        print(f"\nrecorded in the cards of {', '.join(recorded) or 'no registered model'}")
    return 0


def _refuse_recording_averages(names: Sequence[str] | None) -> None:
    """An average of models ("A+B") has no card: say so before any work, not after."""
    from core.models.ensemble import is_ensemble_name

    averages = [name for name in names or [] if is_ensemble_name(name)]
    if averages:
        raise ValueError(
            f"{', '.join(averages)} is an average of registered models and has no card to record in; "
            "run it without --record"
        )


def add_robustness_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "robustness", help="real-photo test: corruption suite on val and faces in scenes (README tables)"
    )
    parser.add_argument(
        "--models", nargs="+", default=None, help="registered model names (default: baseline masked)"
    )
    parser.add_argument("--scenes", type=int, default=50, help="photos of faces in scenes (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes and the corruptions")
    parser.add_argument(
        "--limit", type=int, default=500, help="val faces in the corruption suite (0: all; -1: none)"
    )
    parser.add_argument(
        "--min-face-size",
        type=int,
        nargs="+",
        default=None,
        help="detector minimum face size(s) in pixels for the scenes (default: the detector's); "
        "several give a comparison (--record stores the first)",
    )
    parser.add_argument("--data", default=DATA_DEFAULT, help="FER2013 folder or fer2013.csv")
    parser.add_argument("--split", default="val")
    parser.add_argument("--record", action="store_true", help="store the results in each model card")
    parser.add_argument(
        "--save-scenes", default=None, metavar="DIR", help="also write the scene photos and truth.json here"
    )


def run_robustness(args: argparse.Namespace) -> int:
    import time

    from core.data.datasets import load_dataset
    from core.evaluation.robustness import (
        corruption_suite,
        corruption_table,
        record,
        scenes_table,
        subset,
        width_table,
    )
    from core.evaluation.scenes import make_scenes, save_scenes, score_scenes
    from core.faces.detection import FaceDetector

    sizes: list[int | None] = args.min_face_size or [None]  # None: FaceDetector's default
    if args.scenes < 0 or any(size is not None and size < 12 for size in sizes):
        raise ValueError("--scenes must be 0 or more and --min-face-size at least 12")
    if args.scenes == 0 and args.limit < 0:
        raise ValueError("nothing to run: --scenes 0 and --limit -1")
    _refuse_recording_averages(args.models if args.record else None)
    models = _models(args.models)
    faces = load_dataset(args.data, args.split)
    corruptions = None
    if args.limit >= 0:
        started = time.perf_counter()
        chosen = subset(faces, args.limit or None, args.seed)
        print(f"corruption suite: {len(chosen)} {args.split} faces ...", file=sys.stderr, flush=True)
        corruptions = corruption_suite(models, chosen, args.seed)
        print(f"## Corruption suite ({len(chosen)} {args.split} faces, accuracy %)\n")
        print(corruption_table(corruptions))
        print(f"\n({time.perf_counter() - started:.0f} s)\n")
    runs = []
    if args.scenes:
        scenes = list(make_scenes(faces.images, faces.labels, args.scenes, args.seed))
        if args.save_scenes:
            print(f"wrote {save_scenes(scenes, Path(args.save_scenes))}", file=sys.stderr)
        for size in sizes:
            detector = FaceDetector() if size is None else FaceDetector(min_face_size=size)
            started = time.perf_counter()
            print(
                f"faces in scenes: {args.scenes} photos, min face {detector.min_face_size} px ...",
                file=sys.stderr,
                flush=True,
            )
            runs.append(score_scenes(scenes, models, detector))
            runs[-1]["seed"] = args.seed
            print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        count = sum(len(scene.faces) for scene in scenes)
        print(f"## Faces in scenes ({args.scenes} photos, {count} {args.split} faces, seed {args.seed})\n")
        print(scenes_table(runs))
        print("\nBy face width (end-to-end accuracy, misses wrong; accuracy of found faces in brackets):\n")
        print(width_table(runs))
    if args.record:
        command = " ".join(["python -m core", *(sys.argv[1:] if args.argv is None else args.argv)])
        record([m.name for m in models], command, corruptions, runs[0] if runs else None, args.seed)
        print(f"\nrecorded in the cards of {', '.join(m.name for m in models)}")
    return 0


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="speed and memory benchmark (make bench)")
    parser.add_argument("--video-only", action="store_true", help="only the video section")
    parser.add_argument("--live-only", action="store_true", help="only the live camera section")
    parser.add_argument("--photo-only", action="store_true", help="only the photos against stock MTCNN")
    parser.add_argument(
        "--compare-only", action="store_true", help="only the saliency comparison of one face"
    )


def run_bench(args: argparse.Namespace) -> int:
    """The benchmark lives outside the library (tests/harness/bench.py); this command runs it."""
    import subprocess

    from core.paths import REPO_ROOT

    sections = ("video_only", "live_only", "photo_only", "compare_only")
    flags = ["--" + name.replace("_", "-") for name in sections if getattr(args, name)]
    return subprocess.call([sys.executable, "-m", "tests.harness.bench", *flags], cwd=REPO_ROOT)


COMMANDS = {
    "train": run_train,
    "predict": run_predict,
    "explain": run_explain,
    "saliency-study": run_saliency_study,
    "evaluate": run_evaluate,
    "clusters": run_clusters,
    "register": run_register,
    "framing": run_framing,
    "models": run_models,
    "calibrate": run_calibrate,
    "bench": run_bench,
    "video": run_video,
    "report": run_report,
    "robustness": run_robustness,
    "jobs": run_jobs,
}
