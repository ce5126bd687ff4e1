"""What a piece of work costs before it starts, and whether a public visitor may start it.

A cost is faces x models x passes ("face passes": one face through one model once). A photo
is at most FER_STUDIO_MAX_FACES faces x the models x 2 passes (prediction and Grad-CAM); an
evaluation is its faces x 1 model x (1 clean pass + 1 per occlusion); a video is its frames
x the models. In public mode work above PUBLIC_BUDGET face passes is refused with a sentence
that says what to do instead; elsewhere nothing is refused (a local studio may run anything).

FACE_PASSES_PER_S turns a cost into seconds for the wait shown to a waiting visitor: the
shipped VGG classifies about 250 faces/s at batch 64 on the 2-core build machine with nothing
else running, and about 30 when five other jobs share it (docs/performance.md); 60 is between.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.serving.public import public_mode

FACE_PASSES_PER_S = 60.0
# 1,000 face passes: about 4 s on an idle 2-core machine, 35 s on a busy one; under the 60 s
# a public visitor's work may take.
PUBLIC_BUDGET = 1_000
# Faces of a dataset split a public visitor's evaluation reads (the first ones, in file order).
PUBLIC_EVALUATION_FACES = 500
PUBLIC_SPLITS = ("val",)
ELSEWHERE = (
    "run it on your own machine: `python -m core evaluate ...` (the CLI), or the studio "
    "itself with `make run`, where no budget applies"
)


class OverBudget(ValueError):
    """Work a public visitor may not start; the message says why and what to do instead."""


@dataclass(frozen=True)
class Cost:
    """One piece of work's size: what it is, and faces x models x passes."""

    what: str
    faces: int
    models: int
    passes: int

    @property
    def face_passes(self) -> int:
        return self.faces * self.models * self.passes

    @property
    def seconds(self) -> float:
        """A rough duration on this server (for the estimated wait, not a promise)."""
        return self.face_passes / FACE_PASSES_PER_S

    def describe(self) -> str:
        return (
            f"{self.what} is {self.faces:,} faces x {self.models} model(s) x {self.passes} pass(es) "
            f"= {self.face_passes:,} face passes"
        )


def photo_cost(faces: int, models: int, grad_cam: bool = True) -> Cost:
    """One photo: its faces (at most FER_STUDIO_MAX_FACES), each model, prediction and Grad-CAM."""
    return Cost("Reading one photo", max(faces, 1), max(models, 1), 2 if grad_cam else 1)


def evaluation_cost(faces: int, occlusion: bool, occlusions: int = 2) -> Cost:
    """Evaluating one model on `faces` faces: one clean pass, and one per occlusion when asked."""
    return Cost("This evaluation", faces, 1, 1 + (occlusions if occlusion else 0))


def video_cost(frames: int, models: int) -> Cost:
    """A video: every frame's tracked faces through every model (one face per frame assumed)."""
    return Cost("This video", frames, max(models, 1), 1)


def public_budget() -> int | None:
    """The most face passes one request may cost: PUBLIC_BUDGET in public mode, else None (no limit)."""
    return PUBLIC_BUDGET if public_mode() else None


def check(cost: Cost, budget: int | None = None) -> Cost:
    """Return the cost when it fits the budget (public_budget() by default); OverBudget otherwise."""
    limit = public_budget() if budget is None else budget
    if limit is not None and cost.face_passes > limit:
        raise OverBudget(
            f"{cost.describe()}; this public demo runs at most {limit:,} per request so that every "
            f"visitor gets a turn. To run it, {ELSEWHERE}."
        )
    return cost


def check_evaluation(split: str | None, faces: int, occlusion: bool, occlusions: int = 2) -> Cost:
    """An evaluation's cost, refused in public mode unless it is on val, capped and without occlusion."""
    if public_mode():
        if split not in PUBLIC_SPLITS:
            shown = "the whole folder" if split is None else f"the {split} split"
            raise OverBudget(
                f"This public demo evaluates on {' or '.join(PUBLIC_SPLITS)} only, not on {shown}. "
                f"To evaluate there, {ELSEWHERE}."
            )
        if faces > PUBLIC_EVALUATION_FACES:
            raise OverBudget(
                f"This public demo evaluates on the first {PUBLIC_EVALUATION_FACES:,} faces of a split, "
                f"not {faces:,}. For the whole split, {ELSEWHERE}."
            )
    return check(evaluation_cost(faces, occlusion, occlusions))


def evaluation_faces(available: int) -> int:
    """How many of a split's faces an evaluation reads: all of them, or the public cap."""
    return min(available, PUBLIC_EVALUATION_FACES) if public_mode() else available
