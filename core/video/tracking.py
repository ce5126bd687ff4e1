"""Follow faces across video frames so each person keeps one id: a centre-distance tracker.

Detections are matched to tracks by how far each box's centre lies from the track's box
predicted for this frame (constant velocity since its last detection), measured in face
sizes, with one optimal assignment per frame (SciPy's Hungarian solver). Centre distance
rather than box overlap (IoU): a face moving a third of its width between two detections
(detect every k-th frame, a quick turn of the head) no longer overlaps enough for an IoU
threshold, but its centre is still far closer than any other face's. Between detections
tracks are followed by the same prediction. A track not seen for `max_missed` frames ends;
a face that comes back near where it was seen within that time keeps its id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.faces.detection import Face, as_box


@dataclass
class Track:
    """One followed face: its id, its last detection, and its box speed per frame."""

    id: int
    face: Face
    frame: int
    velocity: np.ndarray  # (4,) box change per frame
    visible: bool = True  # matched at the most recent detection

    def predict(self, frame: int) -> Face:
        """The face moved on at constant velocity to `frame`."""
        shift = self.velocity * (frame - self.frame)
        if not shift.any():
            return self.face
        box = as_box(np.asarray(self.face.box) + shift)
        dx, dy = (shift[0] + shift[2]) / 2, (shift[1] + shift[3]) / 2
        landmarks = tuple((x + dx, y + dy) for x, y in self.face.landmarks)
        return replace(self.face, box=box, landmarks=landmarks)


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between the centres of every box in a (N, 4) and every box in b (M, 4), in units of
    the larger of the two boxes' sides; infinite where one box is more than twice the other's size."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    centre_a, centre_b = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    side_a = np.maximum(a[:, 2] - a[:, 0], a[:, 3] - a[:, 1])[:, None]
    side_b = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])[None, :]
    distance = np.linalg.norm(centre_a[:, None] - centre_b[None], axis=2) / np.maximum(side_a, side_b)
    similar = np.maximum(side_a, side_b) <= 2 * np.minimum(side_a, side_b)
    return np.where(similar, distance, np.inf)


class FaceTracker:
    """Gives each face a stable id. Call update() once per frame, in order.

    max_distance: the farthest a detection's centre may be from a track's predicted centre, in face
    sizes, to be the same face.
    max_missed: frames a track lives on without a matching detection (the face may come back).
    """

    def __init__(self, max_distance: float = 0.8, max_missed: int = 30) -> None:
        self.max_distance = max_distance
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, frame: int, faces: list[Face] | None) -> list[tuple[int, Face, bool]]:
        """The faces in this frame as (track id, face, detected), ordered by id.

        `faces` None means no detection ran on this frame: visible tracks are followed.
        """
        if faces is None:
            return [(t.id, t.predict(frame), False) for t in self.tracks if t.visible]
        predicted = [t.predict(frame) for t in self.tracks]
        matches: dict[int, int] = {}  # detection index -> track index
        if predicted and faces:
            distance = centre_distance(np.array([p.box for p in predicted]), np.array([f.box for f in faces]))
            rows, cols = linear_sum_assignment(np.minimum(distance, 1e6))
            matches = {c: r for r, c in zip(rows, cols, strict=True) if distance[r, c] <= self.max_distance}
        for track in self.tracks:
            track.visible = False
        for index, face in enumerate(faces):
            if index in matches:
                track = self.tracks[matches[index]]
                track.velocity = (np.asarray(face.box) - np.asarray(track.face.box)) / max(
                    frame - track.frame, 1
                )
                track.face, track.frame, track.visible = face, frame, True
            else:
                self.tracks.append(Track(self._next_id, face, frame, np.zeros(4)))
                self._next_id += 1
        for track in self.tracks:
            if not track.visible:
                # A lost face is looked for where it was last seen, not where it was heading.
                track.velocity = np.zeros(4)
        self.tracks = [t for t in self.tracks if frame - t.frame <= self.max_missed]
        return sorted(((t.id, t.face, True) for t in self.tracks if t.visible), key=lambda item: item[0])
