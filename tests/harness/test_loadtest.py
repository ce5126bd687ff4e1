"""The load test's own logic (tests/harness/loadtest.py, tests/harness/streamlit_client.py), so it cannot silently rot.

The slow test runs the harness for real, small: `streamlit run app.py` as a host starts it,
two protocol sessions at once and one session uploading two large PNGs. Nothing is timed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.loadtest import (
    PhotoResult,
    Shown,
    expected_results,
    format_report,
    heavy_photo,
    load_test,
    mismatches,
    same_result,
    session_photo,
)
from tests.helpers import write_fer_folders


def test_the_generated_photos_hold_one_to_four_faces_each_in_its_own_place(tiny_registry: list[str]) -> None:
    names, expected = expected_results([session_photo(i) for i in range(5)] + [heavy_photo(1, side=1200)])
    assert names == tiny_registry
    assert [len(result.boxes) for result in expected] == [1, 2, 3, 4, 1, 2]
    assert all(set(face) == set(names) for result in expected for face in result.probabilities)
    assert not any(same_result(expected[i], expected[j]) for i in range(6) for j in range(i))


def _face(top: float) -> dict[str, list[float]]:
    """One face's probabilities for models a and b: `top` on class 3, the rest spread evenly."""
    rest = (1 - top) / 6
    probabilities = [rest] * 3 + [top] + [rest] * 3
    return {"a": probabilities, "b": probabilities}


def test_a_session_shown_another_photos_results_is_caught() -> None:
    box, elsewhere = [0.1, 0.1, 0.5, 0.6], [0.3, 0.1, 0.7, 0.6]
    one = PhotoResult([box], [_face(0.9)])

    def shown(faces: int, probabilities: list, boxes: list | None) -> list[Shown]:
        return [Shown(faces, probabilities, boxes)]

    assert mismatches(shown(1, [_face(0.9)], [box]), [one]) == []
    assert mismatches(shown(1, [_face(0.904)], [[0.1, 0.1, 0.505, 0.6]]), [one]) == [], "equal to 2 decimals"
    assert mismatches(shown(1, [_face(0.7)], [box]), [one]) == [
        "photo 1 face 1: a's probabilities differ",
        "photo 1 face 1: b's probabilities differ",
    ]
    assert mismatches(shown(1, [_face(0.9)], [elsewhere]), [one]) == ["photo 1: the face boxes differ"]
    assert mismatches(shown(2, [_face(0.9)] * 2, [box] * 2), [one]) == [
        "photo 1: 2 faces shown, its photo has 1"
    ]
    assert mismatches(shown(1, [], [box]), [one]) == ["photo 1: 0 charts for 1 faces"]
    assert mismatches(shown(1, [_face(0.9)], None), [one]) == [
        "photo 1: no face boxes (JSON download) to check"
    ]
    assert mismatches([], [one]) == ["0 image results shown for 1 photos"]
    assert same_result(one, PhotoResult([box], [_face(0.905)]))
    assert not same_result(one, PhotoResult([elsewhere], [_face(0.9)]))
    assert not same_result(one, PhotoResult([box], [_face(0.8)]))


@pytest.mark.slow
def test_the_load_test_drives_concurrent_sessions_and_checks_what_each_was_shown(
    tmp_path: Path, isolated_home: Path, tiny_registry: list[str]
) -> None:
    write_fer_folders(isolated_home / "datasets" / "fer", count_per_class=2)  # the mixed case evaluates on it
    report = load_test(
        sessions=[2],
        heavy=(1, 2, 1200),
        idle_wait=0,
        timeout=120,
        home=isolated_home,
        log=tmp_path / "streamlit.log",
        say=lambda text: None,
        mixed=1,
    )
    assert report["models"] == tiny_registry
    photos, mixed, heavy = report["rounds"]
    assert mixed["case"] == "mixed" and mixed["sessions"] == 1
    assert mixed["long_job"]["error"] is None and mixed["long_job"]["seconds"] > 0, mixed["long_job"]
    assert mixed["visits"][0]["error"] is None and mixed["visits"][0]["crosstalk"] == []
    assert (photos["case"], photos["sessions"], heavy["case"], heavy["photos_per_session"]) == (
        "photos",
        2,
        "heavy",
        2,
    )
    for visit in photos["visits"] + heavy["visits"]:
        assert visit["error"] is None and visit["crosstalk"] == [], visit
        assert visit["first_result_s"] <= visit["grad_cam_s"]
    assert [v["faces"] for v in photos["visits"]] == [[1], [2]], "each session saw its own photo's faces"
    assert heavy["visits"][0]["faces"] == [1, 2], "both uploaded images' results, in order"
    assert photos["completed"] == 2 and heavy["completed"] == 1
    assert report["idle_rss_mb"] > 100 and photos["peak_rss_mb"] >= photos["rss_before_mb"] > 100
    table = format_report(report)
    assert "| photos | 2 | 2 | 0 | 0 |" in table and "| heavy: 2 x" in table
    assert "20 sessions: server peak RSS <= 2000 MB: not run" in table
    assert "| mixed: photos + 1 evaluation | 1 | 1 |" in table and "the evaluation (Models page" in table
