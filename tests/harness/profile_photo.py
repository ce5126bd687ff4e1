"""`python -m tests.harness.profile_photo`: where the photo path's time goes (issue #22).

Two profiles on the bench's 640x480 one-face photo (tests.harness.bench.sample_photos):
- explain: the two default models' Grad-CAMs of one face, the way grad-cam runs them (a CAM
  object and its hooks built per call, a full backward pass) split into its steps, beside
  core.explain.saliency's own path;
- detect: facenet-pytorch's MTCNN at the photo's 20 px minimum, stage by stage (the pyramid's
  resampling and PNet per scale, the per-box resampling before RNet and ONet, the nets, NMS), beside
  core.faces.detection's own stages.

Each step is the median of `runs` repetitions, in milliseconds. Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from facenet_pytorch.models.utils.detect_face import (
    batched_nms,
    batched_nms_numpy,
    bbreg,
    fixed_batch_process,
    generateBoundingBox,
    imresample,
    pad,
    rerec,
)
from PIL import Image

from core.explain.saliency import cam_class, explain
from core.faces.detection import FaceDetector, crop_face
from core.faces.mtcnn import detect_faces
from core.models.architectures import cam_layers
from core.models.predict import calibrated_softmax
from core.models.preprocess import to_tensor
from core.paths import DATA_DEFAULT
from tests.harness.bench import default_models, sample_photos


class Clock:
    """Milliseconds per named step, summed within one run and kept per run."""

    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []

    def start_run(self) -> None:
        self.runs.append({})

    def time(self, step: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        self.runs[-1][step] = self.runs[-1].get(step, 0.0) + 1000 * (time.perf_counter() - started)
        return result

    def medians(self) -> dict[str, float]:
        steps = dict.fromkeys(step for run in self.runs for step in run)
        return {step: statistics.median(run.get(step, 0.0) for run in self.runs) for step in steps}


def grad_cam_steps(clock: Clock, model: Any, crops: np.ndarray) -> None:
    """grad-cam's own path for one model, step by step (what explain did before #22: a CAM object
    and its hooks per call, a forward pass recording the whole graph, a backward pass through the
    whole net to its weights)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_type = clock.time("import + class", lambda: cam_class("gradcam"))
    clock.time("lock", model.lock.acquire)
    try:
        cam = clock.time(
            "CAM object + hooks", lambda: cam_type(model=model.module, target_layers=cam_layers(model.module))
        )
        inputs = clock.time("to tensor", lambda: to_tensor(crops, model.preprocessing))
        inputs.requires_grad_(True)
        outputs = clock.time("forward (with graph)", lambda: cam.activations_and_grads(inputs))
        targets = [ClassifierOutputTarget(int(c)) for c in outputs.argmax(1)]

        def backward() -> None:
            model.module.zero_grad()
            sum(t(o) for t, o in zip(targets, outputs, strict=True)).backward(retain_graph=True)

        clock.time("backward (whole net)", backward)
        per_layer = clock.time("CAM maps + resize", lambda: cam.compute_cam_per_layer(inputs, targets, False))
        clock.time("aggregate", lambda: cam.aggregate_multi_layers(per_layer))
        clock.time("probabilities", lambda: calibrated_softmax(outputs.detach(), model.temperature).numpy())
        clock.time("release hooks", cam.activations_and_grads.release)
    finally:
        model.lock.release()


def profile_explain(runs: int) -> dict[str, dict[str, float]]:
    detector = FaceDetector()
    photo = Image.open(__import__("io").BytesIO(sample_photos()["640x480, 1 face"])).convert("RGB")
    faces = detector.detect(photo)
    crops = np.stack([crop_face(photo, face) for face in faces])
    models = default_models()
    stock, ours = Clock(), Clock()
    for _ in range(3):
        for model in models:
            stock.start_run()
            grad_cam_steps(stock, model, crops)
            explain(model, crops)
    stock.runs.clear()
    for _ in range(runs):  # interleaved: the machine's load falls on both alike
        stock.start_run()
        ours.start_run()
        for model in models:
            grad_cam_steps(stock, model, crops)
            ours.time(f"explain ({model.name})", lambda m=model: explain(m, crops))
    stock_medians = stock.medians()
    stock_medians["total (sum of steps)"] = sum(stock_medians.values())
    return {"grad-cam per call, both models": stock_medians, "core.explain.saliency.explain": ours.medians()}


def mtcnn_steps(clock: Clock, mtcnn: Any, image: Image.Image, minsize: int) -> None:
    """facenet-pytorch's detect_face for one photo, step by step (its own code, timed)."""
    pnet, rnet, onet = mtcnn.pnet, mtcnn.rnet, mtcnn.onet
    threshold, factor = mtcnn.thresholds, mtcnn.factor
    imgs = clock.time(
        "to tensor", lambda: torch.as_tensor(np.uint8(image)[None].copy()).permute(0, 3, 1, 2).float()
    )
    h, w = imgs.shape[2:4]
    m = 12.0 / minsize
    minl = min(h, w) * m
    scales, scale_i = [], m
    while minl >= 12:
        scales.append(scale_i)
        scale_i *= factor
        minl *= factor
    boxes, image_inds, scale_picks, offset = [], [], [], 0
    for scale in scales:
        data = clock.time(
            "1: pyramid resample", lambda s=scale: imresample(imgs, (int(h * s + 1), int(w * s + 1)))
        )
        data = (data - 127.5) * 0.0078125
        reg, probs = clock.time("1: PNet", lambda d=data: pnet(d))
        found, inds = clock.time(
            "1: candidates + NMS",
            lambda r=reg, p=probs, s=scale: generateBoundingBox(r, p[:, 1], s, threshold[0]),
        )
        pick = batched_nms(found[:, :4], found[:, 4], inds, 0.5)
        boxes.append(found)
        image_inds.append(inds)
        scale_picks.append(pick + offset)
        offset += found.shape[0]
    all_boxes = torch.cat(boxes)[torch.cat(scale_picks)]
    inds = torch.cat(image_inds)[torch.cat(scale_picks)]
    pick = batched_nms(all_boxes[:, :4], all_boxes[:, 4], inds, 0.7)
    all_boxes, inds = all_boxes[pick], inds[pick]
    regw, regh = all_boxes[:, 2] - all_boxes[:, 0], all_boxes[:, 3] - all_boxes[:, 1]
    all_boxes = torch.stack(
        [
            all_boxes[:, 0] + all_boxes[:, 5] * regw,
            all_boxes[:, 1] + all_boxes[:, 6] * regh,
            all_boxes[:, 2] + all_boxes[:, 7] * regw,
            all_boxes[:, 3] + all_boxes[:, 8] * regh,
            all_boxes[:, 4],
        ]
    ).permute(1, 0)
    all_boxes = rerec(all_boxes)
    clock.runs[-1]["candidates after PNet"] = float(len(all_boxes))

    def resample_each(boxes_: torch.Tensor, size: int) -> torch.Tensor:
        y, ey, x, ex = pad(boxes_, w, h)
        return torch.cat(
            [imresample(imgs[:, :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]], (size, size)) for k in range(len(y))]
        )

    data = clock.time("2: per-box resample", lambda: resample_each(all_boxes, 24))
    out = clock.time("2: RNet", lambda: fixed_batch_process((data - 127.5) * 0.0078125, rnet))
    score = out[1][:, 1]
    keep = score > threshold[1]
    all_boxes = torch.cat((all_boxes[keep, :4], score[keep, None]), 1)
    inds, mv = inds[keep], out[0][keep]
    pick = batched_nms(all_boxes[:, :4], all_boxes[:, 4], inds, 0.7)
    all_boxes = rerec(bbreg(all_boxes[pick], mv[pick]))
    inds = inds[pick]
    clock.runs[-1]["candidates after RNet"] = float(len(all_boxes))
    if len(all_boxes):
        data = clock.time("3: per-box resample", lambda: resample_each(all_boxes, 48))
        out = clock.time("3: ONet", lambda: fixed_batch_process((data - 127.5) * 0.0078125, onet))
        score = out[2][:, 1]
        keep = score > threshold[2]
        all_boxes = bbreg(torch.cat((all_boxes[keep, :4], score[keep, None]), 1), out[0][keep])
        clock.time(
            "3: NMS (numpy)",
            lambda: batched_nms_numpy(all_boxes[:, :4], all_boxes[:, 4], inds[keep], 0.7, "Min"),
        )


def profile_detect(runs: int) -> dict[str, dict[str, float]]:
    from facenet_pytorch import MTCNN

    photo = Image.open(__import__("io").BytesIO(sample_photos()["640x480, 1 face"])).convert("RGB")
    detector = FaceDetector()
    mtcnn = MTCNN(keep_all=True, device="cpu", min_face_size=20)
    for net in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet):
        net.to(memory_format=torch.channels_last)
    stock, ours = Clock(), Clock()
    with torch.inference_mode():
        for _ in range(3):
            stock.start_run()
            mtcnn_steps(stock, mtcnn, photo, 20)
            detector.detect(photo)
        stock.runs.clear()
        for _ in range(runs):
            stock.start_run()
            ours.start_run()
            started = time.perf_counter()
            mtcnn_steps(stock, mtcnn, photo, 20)
            stock.runs[-1]["total"] = 1000 * (time.perf_counter() - started)
            ours.time("FaceDetector.detect", lambda: detector.detect(photo))
            stages: dict[str, float] = {}
            detect_faces(np.asarray(photo), detector._mtcnn, 20, stages)
            for step, seconds in stages.items():
                ours.runs[-1][f"stages: {step}"] = 1000 * seconds
    return {
        "facenet-pytorch detect_face (channels-last nets), 20 px": stock.medians(),
        "core.faces.detection": ours.medians(),
    }


class StockDetector(FaceDetector):
    """FaceDetector with facenet-pytorch's own MTCNN.detect (its channels-first nets, per-box
    resampling) behind it: what core.faces.detection did before #22, for the comparison on scenes."""

    def __init__(self) -> None:
        super().__init__()
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(keep_all=True, device="cpu", min_face_size=self.min_face_size)
        for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
            net.to(memory_format=torch.channels_last)  # as core.faces.detection had them

    def detect_all(self, image: Image.Image) -> list[Any]:
        import core.faces.mtcnn as stages

        def stock(pixels: np.ndarray, mtcnn: Any, min_face: float, timings: Any = None) -> Any:
            mtcnn.min_face_size = min_face
            with torch.inference_mode():
                boxes, scores, points = mtcnn.detect(Image.fromarray(pixels), landmarks=True)
            if boxes is None:
                return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
            return boxes, scores, points

        original = stages.detect_faces
        stages.detect_faces = stock
        try:
            return super().detect_all(image)
        finally:
            stages.detect_faces = original


def compare_on_scenes(count: int, data: str) -> dict[str, float]:
    """Faces in scenes (core.evaluation.scenes, FER2013 val faces): faces found and detection time of
    core.faces.detection against the same detector on facenet-pytorch's MTCNN.detect, and how
    closely their boxes agree (each of ours against the stock box it overlaps most)."""
    from core.data.datasets import load_dataset
    from core.evaluation.scenes import make_scenes, match_detections

    val = load_dataset(data, "val")
    ours, stock = FaceDetector(), StockDetector()
    found = {"ours": 0, "stock": 0}
    seconds = {"ours": 0.0, "stock": 0.0}
    truth = extra = 0
    ious: list[float] = []
    for scene in make_scenes(val.images, val.labels, count, seed=0):
        photo = scene.image()
        truth += len(scene.faces)
        boxes = {}
        for name, detector in (("stock", stock), ("ours", ours)):
            started = time.perf_counter()
            boxes[name] = [face.box for face in detector.detect_all(photo)]
            seconds[name] += time.perf_counter() - started
            found[name] += sum(d is not None for d in match_detections(scene.faces, boxes[name]))
        extra += abs(len(boxes["ours"]) - len(boxes["stock"]))
        for box in boxes["ours"]:
            ious.append(max((_iou(box, other) for other in boxes["stock"]), default=0.0))
    return {
        "scenes": float(count),
        "truth faces": float(truth),
        "found (stock MTCNN.detect)": float(found["stock"]),
        "found (core.faces.detection)": float(found["ours"]),
        "photos' detection count differs": float(extra),
        "lowest IoU with a stock box": min(ious, default=1.0),
        "ms per photo (stock)": 1000 * seconds["stock"] / count,
        "ms per photo (ours)": 1000 * seconds["ours"] / count,
    }


def _iou(a: Any, b: Any) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def format_profile(sections: dict[str, dict[str, float]]) -> str:
    lines = []
    for title, steps in sections.items():
        lines += ["", f"| {title} | median ms (or count) |", "| --- | --- |"]
        lines += [f"| {step} | {ms:.1f} |" for step, ms in steps.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.profile_photo", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=["explain", "detect", "scenes"])
    parser.add_argument(
        "--scenes", type=int, default=60, help="faces-in-scenes photos to compare detectors on"
    )
    parser.add_argument("--data", default=DATA_DEFAULT, help="FER2013 folder the scene faces come from")
    args = parser.parse_args(argv)
    sections: dict[str, dict[str, float]] = {}
    if args.only == "scenes":
        sections["faces in scenes: core.faces.detection against MTCNN.detect"] = compare_on_scenes(
            args.scenes, args.data
        )
    if args.only in (None, "explain"):
        sections |= profile_explain(args.runs)
    if args.only in (None, "detect"):
        sections |= profile_detect(args.runs)
    print(
        f"Machine: {torch.get_num_threads()} threads, torch {torch.__version__}; {args.runs} runs, interleaved"
    )
    print(format_profile(sections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
