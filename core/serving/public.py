"""Public mode and the per-visitor limits of the app, read from the environment at call time.

FER_STUDIO_PUBLIC=1 turns the app into a public demo: training off, datasets only from a
list (no path typed by a visitor is read), and the lower of the two defaults below. Each
limit can be set on its own; a set variable wins over the mode's default.

FER_STUDIO_MAX_IMAGES      photos analysed per upload             (default 8, public 3)
FER_STUDIO_MAX_UPLOAD_MB   megabytes per uploaded file             (default 20, public 10)
FER_STUDIO_MAX_MEGAPIXELS  pixels per photo, refused above         (default 50, public 24)
FER_STUDIO_WORK_SIDE       longer side of the copy the app works on (default 2048, public 1600)
FER_STUDIO_MAX_FACES       faces read per photo, largest first     (default 20, public 10)
FER_STUDIO_MAX_ANALYSES    analyses running at once in the process (default 2, public 1)
FER_STUDIO_CACHE_MB        memory for cached results, all visitors (default 256, public 160)
FER_STUDIO_MAX_VIDEO_SECONDS  length of an uploaded video          (default 600, public 60)
FER_STUDIO_MAX_STREAMS     live camera streams at once in the process (default 2, public 1)
FER_STUDIO_MAX_STREAM_SECONDS length of one live stream            (default 3600, public 120)

The live camera's STUN/TURN servers are FER_STUDIO_ICE_SERVERS (core.video.ice).

No Streamlit here: the app copies these names from Streamlit secrets into the
environment on every page run (ui.deploy.settings_from_secrets), where a secret wins over a
variable of the same name, as Streamlit's own copy of top-level secrets does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PUBLIC = "FER_STUDIO_PUBLIC"
_ON = {"1", "on", "true", "yes"}

# name: (field, default, public default)
_LIMITS: dict[str, tuple[str, int, int]] = {
    "FER_STUDIO_MAX_IMAGES": ("max_images", 8, 3),
    "FER_STUDIO_MAX_UPLOAD_MB": ("max_upload_mb", 20, 10),
    "FER_STUDIO_MAX_MEGAPIXELS": ("max_megapixels", 50, 24),
    "FER_STUDIO_WORK_SIDE": ("work_side", 2048, 1600),
    "FER_STUDIO_MAX_FACES": ("max_faces", 20, 10),
    "FER_STUDIO_MAX_ANALYSES": ("max_analyses", 2, 1),
    "FER_STUDIO_CACHE_MB": ("cache_mb", 256, 160),
    "FER_STUDIO_MAX_VIDEO_SECONDS": ("max_video_seconds", 600, 60),
    "FER_STUDIO_MAX_STREAMS": ("max_streams", 2, 1),
    "FER_STUDIO_MAX_STREAM_SECONDS": ("max_stream_seconds", 3600, 120),
}

# Every setting a deployment may pass through Streamlit secrets.
SETTINGS: tuple[str, ...] = (
    PUBLIC,
    "FER_STUDIO_TRAINING",
    "FER_STUDIO_DATA_ROOTS",
    "FER_STUDIO_ICE_SERVERS",
    *_LIMITS,
)


def public_mode() -> bool:
    """Whether FER_STUDIO_PUBLIC turns the public demo on (1, on, true or yes)."""
    return os.environ.get(PUBLIC, "").strip().lower() in _ON


@dataclass(frozen=True)
class Limits:
    """What one visitor's request may cost; see the module docstring for each field's variable."""

    max_images: int
    max_upload_mb: int
    max_megapixels: int
    work_side: int
    max_faces: int
    max_analyses: int
    cache_mb: int
    max_video_seconds: int
    max_streams: int
    max_stream_seconds: int

    @property
    def max_pixels(self) -> int:
        return self.max_megapixels * 1_000_000

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb * 2**20

    @property
    def session_upload_bytes(self) -> int:
        """What one session's uploads may hold in memory: a full upload of photos and two more files."""
        return self.max_upload_mb * (self.max_images + 2) * 2**20

    def describe(self) -> str:
        """One sentence for the page: the limits a visitor meets."""
        at_once = "one analysis" if self.max_analyses == 1 else f"{self.max_analyses} analyses"
        return (
            f"Up to {self.max_images} photos per upload, {self.max_upload_mb} MB and "
            f"{self.max_megapixels} megapixels each; up to {self.max_faces} faces per photo "
            f"(the largest); {at_once} at a time on this server, the rest wait their turn."
        )


def _whole_number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return number


def limits() -> Limits:
    """The limits now: each variable when set, else the default of the current mode."""
    public = public_mode()
    values = {
        field: _whole_number(name, public_default if public else default)
        for name, (field, default, public_default) in _LIMITS.items()
    }
    return Limits(**values)
