"""MTCNN's three stages for one photo, as facenet-pytorch's detect_face runs them, with its nets
(PNet, RNet, ONet) and its pure functions (candidate boxes, NMS, box regression), but cheaper:

- the candidate boxes before RNet and ONet are resampled all at once, as area averages read from
  one summed-area table of the photo, where facenet-pytorch calls `interpolate(mode="area")` once
  per box (147 boxes on the bench's 640x480 photo; each call a few small ops, slow on a busy
  machine). The averages are the same: pixels are whole numbers, summed exactly in integers;
- the pyramid's levels are the same area averages, computed from running sums of the photo in whole
  numbers (rows, then columns) rather than by `interpolate(mode="area")`, which spent more than a
  third of PNet's stage converting layouts; they come out channels-last, as the nets run;
- PNet's face probability is the softmax of its two outputs taken on a channels-first copy (the
  channels-last softmax over two channels is slow).

Same boxes, scores and landmarks as `MTCNN.detect` (tests/faces/test_mtcnn.py compares them).
facenet-pytorch's installed files are not changed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from facenet_pytorch.models.utils.detect_face import (
    batched_nms,
    batched_nms_numpy,
    bbreg,
    generateBoundingBox,
    pad,
    rerec,
)

Stages = tuple[np.ndarray, np.ndarray, np.ndarray]


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """The scales MTCNN searches (facenet-pytorch's loop): a face min_face px wide becomes PNet's
    12 px at the first, each next is factor times the last, down to a short side of 12 px."""
    scale = 12.0 / min_face
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def area_table(pixels: np.ndarray, rows_summed: np.ndarray | None = None) -> torch.Tensor:
    """The summed-area table (H+1, W+1, C) of an (H, W, C) uint8 photo, in whole numbers (exact):
    entry [y, x, c] sums channel c over rows < y and columns < x. rows_summed: the photo's row_sums,
    when already made."""
    summed = row_sums(pixels) if rows_summed is None else rows_summed
    table = np.zeros((summed.shape[0], summed.shape[1] + 1, summed.shape[2]), summed.dtype)
    np.cumsum(summed, axis=1, out=table[:, 1:])
    return torch.from_numpy(table)


def _cells(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First and past-last input index (K, size) of each output cell of `interpolate(mode="area")`
    (adaptive average pooling): floor(i * n / size) and ceil((i + 1) * n / size) from start."""
    steps = torch.arange(size, dtype=torch.int64)
    first = torch.div(steps[None] * length[:, None], size, rounding_mode="floor")
    last = -torch.div(-(steps[None] + 1) * length[:, None], size, rounding_mode="floor")
    return start[:, None] + first, start[:, None] + last


def resample_boxes(
    table: torch.Tensor,
    top: torch.Tensor,
    bottom: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Every box [top, bottom) x [left, right) of the photo averaged down (or up) to size (rows,
    columns), as `interpolate(mode="area")` does one box: (K, C, rows, columns) float32, channels-last."""
    rows, columns = size
    y0, y1 = _cells(top, bottom - top, rows)
    x0, x1 = _cells(left, right - left, columns)
    ya, yb = y0[:, :, None], y1[:, :, None]
    xa, xb = x0[:, None, :], x1[:, None, :]
    total = table[yb, xb] - table[ya, xb] - table[yb, xa] + table[ya, xa]  # (K, rows, columns, C)
    area = ((yb - ya) * (xb - xa))[..., None].to(torch.float64)
    return (total.to(torch.float64) / area).float().permute(0, 3, 1, 2)


def _normalise(batch: torch.Tensor) -> torch.Tensor:
    return (batch - 127.5) * 0.0078125


def row_sums(pixels: np.ndarray) -> np.ndarray:
    """Running sums down the rows (H+1, W, C) of an (H, W, C) uint8 photo, in whole numbers: entry
    [y, x, c] sums channel c of column x over rows < y. Both the pyramid and area_table start here."""
    height, width = pixels.shape[:2]
    kind = np.int32 if height * width * 255 < 2**31 else np.int64
    sums = np.zeros((height + 1, width, pixels.shape[2]), kind)
    np.cumsum(pixels, axis=0, dtype=kind, out=sums[1:])
    return sums


def pyramid_level(rows_summed: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The photo averaged down to size (rows, columns) as `interpolate(mode="area")` does it (each
    output pixel the mean of its window), read from row_sums: (1, C, rows, columns) float32,
    channels-last. Rows first, then columns, each window's sum a difference of running sums."""
    height, width = rows_summed.shape[0] - 1, rows_summed.shape[1]
    rows, columns = size
    y0, y1 = _windows(height, rows)
    x0, x1 = _windows(width, columns)
    band = rows_summed[y1] - rows_summed[y0]  # (rows, W, C): each output row's window, summed
    summed = np.zeros((rows, width + 1, band.shape[2]), band.dtype)
    np.cumsum(band, axis=1, out=summed[:, 1:])
    total = summed[:, x1] - summed[:, x0]  # (rows, columns, C)
    area = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).astype(np.float32)[..., None]
    level = torch.from_numpy(total.astype(np.float32) / area)
    return level.permute(2, 0, 1)[None]


def _windows(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive average pooling's windows along one axis: floor(i * n / size) to ceil((i + 1) * n / size)."""
    steps = np.arange(size, dtype=np.int64)
    return steps * length // size, -(-(steps + 1) * length // size)


def first_stage(
    pixels: np.ndarray, pnet: torch.nn.Module, scales: list[float], threshold: float
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """PNet over the pyramid: candidate boxes (N, 9: box, score, regression) after NMS within each
    level and across levels, their image index (all 0), and the photo's row_sums (for area_table).
    The levels are facenet-pytorch's (`interpolate(mode="area")` of the whole photo), computed from
    running sums in whole numbers and handed to PNet channels-last."""
    rows_summed = row_sums(pixels)
    height, width = pixels.shape[:2]
    boxes, picks, offset = [], [], 0
    for scale in scales:
        level = pyramid_level(rows_summed, (int(height * scale + 1), int(width * scale + 1)))
        regression, logits = _pnet(pnet, _normalise(level))
        probability = torch.softmax(logits.contiguous(), dim=1)
        found, image_inds = generateBoundingBox(regression, probability[:, 1], scale, threshold)
        picks.append(batched_nms(found[:, :4], found[:, 4], image_inds, 0.5) + offset)
        boxes.append(found)
        offset += found.shape[0]
    candidates = torch.cat(boxes)[torch.cat(picks)]
    image_inds = torch.zeros(len(candidates), dtype=torch.int64)
    pick = batched_nms(candidates[:, :4], candidates[:, 4], image_inds, 0.7)
    return candidates[pick], image_inds[pick], rows_summed


def _pnet(pnet: Any, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PNet's forward pass without its softmax: (box regression, the two class logits)."""
    x = pnet.prelu1(pnet.conv1(inputs))
    x = pnet.pool1(x)
    x = pnet.prelu2(pnet.conv2(x))
    x = pnet.prelu3(pnet.conv3(x))
    return pnet.conv4_2(x), pnet.conv4_1(x)


def _crops(table: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """The boxes cut as facenet-pytorch cuts them (clipped to the photo) and averaged to size x size,
    and which boxes were not empty."""
    height, width = table.shape[0] - 1, table.shape[1] - 1
    y, ey, x, ex = pad(boxes, width, height)
    keep = (ey > y - 1) & (ex > x - 1)
    as_tensor = [torch.from_numpy(v[keep].astype(np.int64)) for v in (y, ey, x, ex)]
    top, bottom, left, right = as_tensor[0] - 1, as_tensor[1], as_tensor[2] - 1, as_tensor[3]
    return _normalise(resample_boxes(table, top, bottom, left, right, (size, size))), keep


def second_stage(
    table: torch.Tensor,
    rnet: torch.nn.Module,
    boxes: torch.Tensor,
    image_inds: torch.Tensor,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RNet on PNet's candidates (all at once): the boxes that pass, regressed and squared."""
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * regw,
            boxes[:, 1] + boxes[:, 6] * regh,
            boxes[:, 2] + boxes[:, 7] * regw,
            boxes[:, 3] + boxes[:, 8] * regh,
            boxes[:, 4],
        ]
    ).permute(1, 0)
    boxes = rerec(boxes)
    if len(boxes) == 0:
        return boxes, image_inds
    crops, keep = _crops(table, boxes, 24)
    boxes, image_inds = boxes[torch.from_numpy(keep)], image_inds[torch.from_numpy(keep)]
    regression, probability = rnet(crops)
    score = probability[:, 1]
    passed = score > threshold
    boxes = torch.cat((boxes[passed, :4], score[passed].unsqueeze(1)), dim=1)
    image_inds, regression = image_inds[passed], regression[passed]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    return rerec(bbreg(boxes[pick], regression[pick])), image_inds[pick]


def third_stage(
    table: torch.Tensor,
    onet: torch.nn.Module,
    boxes: torch.Tensor,
    image_inds: torch.Tensor,
    threshold: float,
) -> Stages:
    """ONet on RNet's boxes (all at once): final boxes (N, 4), scores (N,) and landmarks (N, 5, 2)."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    crops, keep = _crops(table, boxes, 48)
    boxes, image_inds = boxes[torch.from_numpy(keep)], image_inds[torch.from_numpy(keep)]
    regression, points, probability = onet(crops)
    score = probability[:, 1]
    passed = score > threshold
    points = points[passed].permute(1, 0)
    boxes = torch.cat((boxes[passed, :4], score[passed].unsqueeze(1)), dim=1)
    image_inds, regression = image_inds[passed], regression[passed]
    box_w = boxes[:, 2] - boxes[:, 0] + 1
    box_h = boxes[:, 3] - boxes[:, 1] + 1
    points_x = box_w.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
    points_y = box_h.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
    landmarks = torch.stack((points_x, points_y)).permute(2, 1, 0)
    boxes = bbreg(boxes, regression)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
    boxes, landmarks = boxes[pick], landmarks[pick]
    return boxes[:, :4].numpy(), boxes[:, 4].numpy(), landmarks.numpy()


def detect_faces(
    pixels: np.ndarray, mtcnn: Any, min_face: float, timings: dict[str, float] | None = None
) -> Stages:
    """MTCNN on one (H, W, 3) uint8 photo with an `facenet_pytorch.MTCNN`'s nets, thresholds and
    factor, searching faces from min_face px: boxes (N, 4), scores (N,), landmarks (N, 5, 2), in
    the order of facenet-pytorch's detect_face. timings, if given, gets each stage's seconds."""
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        if timings is not None:
            now = time.perf_counter()
            timings[stage] = now - clock
            clock = now

    with torch.inference_mode():
        scales = pyramid_scales(pixels.shape[0], pixels.shape[1], min_face, mtcnn.factor)
        boxes, image_inds, rows_summed = first_stage(pixels, mtcnn.pnet, scales, mtcnn.thresholds[0])
        lap("pyramid + PNet")
        table = area_table(pixels, rows_summed)
        lap("summed-area table")
        boxes, image_inds = second_stage(table, mtcnn.rnet, boxes, image_inds, mtcnn.thresholds[1])
        lap("box crops + RNet")
        found = third_stage(table, mtcnn.onet, boxes, image_inds, mtcnn.thresholds[2])
        lap("box crops + ONet")
    return found
