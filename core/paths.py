"""Where FER Studio keeps what it makes: trained models, jobs and data (FER_STUDIO_HOME).

Imports nothing heavy, so the job CLI can find its data without loading torch.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """The data folder for trained models, jobs and caches (FER_STUDIO_HOME, default ~/.fer-studio)."""
    return Path(os.environ.get("FER_STUDIO_HOME", Path.home() / ".fer-studio"))
