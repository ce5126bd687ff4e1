"""How much one visitor's uploads may hold in the server's memory, and which to let go.

Streamlit keeps every file a session uploads in memory until the session ends (and a closed
tab's session is kept a while for a reconnect), whether or not a widget still shows it: one
session that sent 60 photos of 19 MB held 1.1 GB. Here a session keeps at most
Limits.session_upload_bytes; past that its oldest files are let go first, never the newest.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def files_to_drop(files: Sequence[tuple[Hashable, int]], max_bytes: int) -> list[Hashable]:
    """The keys of the oldest files to drop so that the rest fit in max_bytes.

    `files` is (key, size in bytes), oldest first; the newest is always kept, even alone over
    the bound (the server's per-file limit bounds it).
    """
    total = sum(size for _, size in files)
    dropped = []
    for key, size in files[:-1]:
        if total <= max_bytes:
            break
        dropped.append(key)
        total -= size
    return dropped
