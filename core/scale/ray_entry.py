"""What a Ray job of the job system runs: `python -m core.scale.ray_entry JOB_ID [--workers N]`.

It runs core.jobs.execute.run_job on the cluster: claims the job's row, trains (in this process, or
with N >= 2 on Ray Train's workers), registers the model and records the end. SIGTERM (the Ray
job stopped) stops after the current batch, the last checkpoint kept: the job is interrupted.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from core.jobs.execute import run_job
    from core.jobs.ray_runner import RayJobStore
    from core.jobs.store import CANCELLED, SUCCEEDED
    from core.scale.ray_train import train_distributed

    parser = argparse.ArgumentParser(prog="python -m core.scale.ray_entry")
    parser.add_argument("job", type=int)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    train_fn = functools.partial(train_distributed, workers=args.workers) if args.workers > 1 else None
    status = run_job(args.job, stopping.is_set, RayJobStore(), train_fn)
    print(f"job {args.job}: {status}", flush=True)
    return 0 if status in (SUCCEEDED, CANCELLED, "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
