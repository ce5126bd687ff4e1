"""`evaluate --detect-faces --ray`: the face detection of a labelled photo folder on a Ray actor pool.

Finding the face in every photo is what takes the time (MTCNN: tens of ms a photo); classifying the
48x48 crops, the occlusion and region tests take seconds for thousands of faces and stay in the
driver, in core.evaluation.metrics.evaluate_model as locally. The crops are the local path's
(core.data.datasets.load_dataset with largest_face_crop): the same files in the same order, each
cropped by FaceDetector's defaults; a photo without a face is left out, an unreadable one stops the
run with its error (DatasetError), as locally.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from core.data import datasets
from core.data.datasets import DatasetError, FaceDataset
from core.faces.images import ImageError, decode_image
from core.jobs.ray_runner import worker_env
from core.scale import DEFAULT_BATCH_SIZE
from core.scale.session import quiet_ray_data, ray_session


def labelled_files(data: str | Path, split: str | None) -> list[tuple[str, int, str]]:
    """(file, label, source) for every photo of `data`/split/emotion/*, in load_labelled_folder's order."""
    root = Path(data)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: --detect-faces needs a folder root/emotion/*.jpg (or root/SPLIT/emotion/*)"
        )
    if split is not None and (root / split).is_dir():
        root = root / split
    return [(str(f), label, str(f.relative_to(root))) for f, label in datasets.labelled_files(root)]


class ActorCropper:
    """One actor of the pool: FaceDetector() made once; the largest face's crop of each photo, or none."""

    def __init__(self) -> None:
        import torch

        from core.faces.detection import FaceDetector

        torch.set_num_threads(1)
        self.detector = FaceDetector()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from core.faces.detection import largest_face_crop

        crops, errors = [], []
        for file in batch["file"]:
            try:
                crop = largest_face_crop(self.detector, decode_image(str(file)))
            except ImageError as err:
                crop, error = None, str(err)
            else:
                error = ""
            crops.append(json.dumps(None if crop is None else crop.tolist()))
            errors.append(error)
        return {**{k: list(v) for k, v in batch.items()}, "crop": crops, "error": errors}


def detected_faces_on_ray(
    data: str | Path,
    split: str | None,
    address: str | None = None,
    actors: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> FaceDataset:
    """What load_dataset(data, split, face_cropper=largest face) gives, with the detection on Ray."""
    files = labelled_files(data, split)
    images, labels, sources = [], [], []
    with ray_session(address):
        import ray

        quiet_ray_data()
        size = max(1, actors or int(ray.cluster_resources().get("CPU", 1)))
        blocks = min(len(files), max(size, math.ceil(len(files) / batch_size)))
        rows = [{"file": f, "label": label, "source": source} for f, label, source in files]
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            ActorCropper,
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=1,
            batch_format="numpy",
            runtime_env={"env_vars": {**worker_env(), "OMP_NUM_THREADS": "1"}},
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for label, source, crop, error in zip(
                batch["label"], batch["source"], batch["crop"], batch["error"], strict=True
            ):
                if error:
                    raise DatasetError(str(error))
                pixels = json.loads(str(crop))
                if pixels is None:
                    continue  # no face found: a photo, not a defect of the dataset
                images.append(np.asarray(pixels, dtype=np.uint8))
                labels.append(int(label))
                sources.append(str(source))
    if not images:
        raise DatasetError(f"{data}: no usable faces")
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), sources)
