"""Connect to Ray for one run: a given address, RAY_ADDRESS, or a local Ray started (and stopped) for it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.jobs.ray_runner import CORE_DIR, runtime_env

# Read when ray is imported: "0" makes a local Ray take 127.0.0.1 as its node address, so its servers
# listen on loopback only (by default Ray 2.60 swaps 127.0.0.1 for the machine's address and listens on all).
LOOPBACK_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def resolve_address(address: str | None) -> str | None:
    """The cluster to use: the address given, else RAY_ADDRESS, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def quiet_ray_data() -> None:
    """Results in input order; our own progress bar and summary instead of Ray Data's bars and INFO lines.

    Call before making a dataset: each dataset keeps a copy of the context it was made in.
    """
    import ray

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the length of a `with` block.

    Ray already initialised in this process (a test, a notebook) is used as it is and left running.
    A local Ray listens on 127.0.0.1 only, without the dashboard. On a cluster, this checkout's
    core/ package travels with the run (py_modules); torch and the rest must be installed there.
    """
    address = resolve_address(address)
    if not address:
        os.environ.setdefault(LOOPBACK_NODE, "0")
    import ray

    if ray.is_initialized():
        yield
        return
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, runtime_env=runtime_env(ship_code=True), **common)
    else:
        # Workers find core/ where this process does, whatever the current folder.
        path = os.pathsep.join(p for p in (str(CORE_DIR.parent), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            **common,
        )
    try:
        yield
    finally:
        ray.shutdown()


def ray_error_line(err: BaseException) -> str:
    """The last meaningful line of a Ray error (the worker's own exception), for a one-line message."""
    lines = [line.strip() for line in str(err).splitlines()]
    useful = [line for line in lines if line and set(line) - set("^~ ") and not line.startswith("File ")]
    return useful[-1] if useful else type(err).__name__
