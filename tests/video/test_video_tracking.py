"""The face tracker on boxes given frame by frame: ids survive motion, gaps and neighbours."""

from __future__ import annotations

import numpy as np

from core.faces.detection import Face
from core.video.tracking import FaceTracker, centre_distance


def box(x: float, y: float, side: float = 50) -> Face:
    return Face(box=(x, y, x + side, y + side), landmarks=((x + 10, y + 20),), score=0.99)


def test_centre_distance_is_in_face_sizes_and_refuses_other_sizes() -> None:
    distance = centre_distance(np.array([box(0, 0).box]), np.array([box(25, 0).box, box(0, 0, 150).box]))
    assert distance[0, 0] == 0.5 and np.isinf(distance[0, 1])


def test_fast_face_between_sparse_detections_keeps_its_id() -> None:
    tracker = FaceTracker()
    ids = []
    for frame in range(12):
        detections = [box(10 + 12 * frame, 40)] if frame % 3 == 0 else None  # 36 px between detections
        ids += [track for track, _, _ in tracker.update(frame, detections)]
    assert ids == [1] * 12


def test_followed_boxes_move_at_the_detected_speed() -> None:
    tracker = FaceTracker()
    tracker.update(0, [box(0, 0)])
    tracker.update(2, [box(20, 10)])
    [(track, face, detected)] = tracker.update(3, None)
    assert (track, detected) == (1, False) and face.box == (30.0, 15.0, 80.0, 65.0)
    assert face.landmarks == ((40.0, 35.0),)


def test_two_neighbours_crossing_paths_vertically_keep_their_ids() -> None:
    tracker = FaceTracker()
    for frame in range(10):
        found = tracker.update(
            frame, [box(70, 10 + 8 * frame), box(10, 100 - 8 * frame)][:: 1 if frame % 2 == 0 else -1]
        )
        by_id = {track: face.box[0] for track, face, _ in found}
        assert by_id == {1: 70, 2: 10}  # 60 px apart, passing each other


def test_a_lost_face_keeps_its_id_only_within_max_missed() -> None:
    tracker = FaceTracker(max_missed=3)
    assert [t for t, _, _ in tracker.update(0, [box(100, 100)])] == [1]
    assert tracker.update(1, []) == []  # gone: not reported, still remembered
    assert [t for t, _, _ in tracker.update(3, [box(104, 100)])] == [1]
    for frame in range(4, 8):
        tracker.update(frame, [])
    assert [t for t, _, _ in tracker.update(8, [box(100, 100)])] == [2]
