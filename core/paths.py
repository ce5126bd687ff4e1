"""Where things are: the repository, its shipped models, FER2013 beside it, and the data folder
(FER_STUDIO_HOME) that holds trained models, jobs and caches.

Every path the library needs is computed here, once. Imports nothing heavy, so the job CLI can find
its data without loading torch.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO_ROOT / "models"
# FER2013 beside the repository (not beside the current folder: the app may start anywhere).
DATA_DEFAULT = str(REPO_ROOT.parent / "shared" / "datasets" / "fer2013")


def home_dir() -> Path:
    """The data folder for trained models, jobs and caches (FER_STUDIO_HOME, default ~/.fer-studio)."""
    return Path(os.environ.get("FER_STUDIO_HOME", Path.home() / ".fer-studio"))


def portable_path(path: str | Path) -> str:
    """A path as a card records it: relative to the repository when it lies beside it (the FER2013
    default reads '../shared/datasets/fer2013' on any machine), otherwise as given."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(REPO_ROOT.parent):
        return os.path.relpath(resolved, REPO_ROOT)
    return str(path)
