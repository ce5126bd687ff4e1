"""core.serving.memory: the heap-arena limit really limits glibc's arenas (in a fresh process each)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.serving.memory import _libc
from tests.harness.browser import REPO

# Eight threads each make small allocations (from a heap arena, not mmap), all alive at once, then
# glibc's own report (malloc_info) is read back: one <heap nr=...> element per arena.
PROBE = """
import ctypes, sys, tempfile, threading
import numpy as np
from core.serving.memory import _libc, limit_heap_arenas
if sys.argv[1] == "limit":
    assert limit_heap_arenas(2)
ready = threading.Barrier(9)
def work():
    kept = [np.ones(1000) for _ in range(50)]  # 8 kB each: below glibc's mmap threshold
    ready.wait()
    ready.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
ready.wait()
libc = _libc()
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(report.name).read().count("<heap nr="))
ready.wait()
for thread in threads:
    thread.join()
"""


def arenas(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(getattr(_libc(), "malloc_info", None) is None, reason="not glibc")
def test_limiting_heap_arenas_keeps_new_threads_in_few_arenas() -> None:
    unlimited, limited = arenas("free"), arenas("limit")
    assert unlimited >= 5, "glibc gives busy new threads arenas of their own"
    assert limited <= 2 < unlimited
