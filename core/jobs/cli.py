"""`python -m core jobs submit|list|show|cancel|resume|worker`: the job system from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from core.jobs.store import Job
from core.training.config import add_train_options, config_from_args


def add_jobs_parser(commands: argparse._SubParsersAction) -> None:
    """Add the `jobs` command group to the main parser's sub-commands."""
    jobs = commands.add_parser("jobs", help="background training jobs (the app's Train page)")
    actions = jobs.add_subparsers(dest="jobs_command", required=True)

    submit = actions.add_parser("submit", help="queue a training; returns at once")
    add_train_options(submit)
    submit.add_argument(
        "--name", default=None, help="register the model under this name (default jobID-ARCH-SCHEME)"
    )

    listing = actions.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--json", action="store_true")

    show = actions.add_parser("show", help="a job's parameters, metrics and log")
    show.add_argument("job", type=int)
    show.add_argument("--json", action="store_true")
    show.add_argument("--log-lines", type=int, default=20)

    for name, text in (("cancel", "cancel a queued or running job"), ("resume", "resume a stopped job")):
        action = actions.add_parser(name, help=text)
        action.add_argument("job", type=int)

    worker = actions.add_parser(
        "worker", help="run the job worker in the foreground (the app starts one itself)"
    )
    worker.add_argument("--stop", action="store_true", help="stop the running worker instead")


def run_jobs(args: argparse.Namespace) -> int:
    from core.jobs.backends import get_runner

    if args.jobs_command == "worker":
        return _run_worker(args)
    runner = get_runner()
    if args.jobs_command in ("list", "show"):
        _warn_about_settings()
    if args.jobs_command == "submit":
        job = runner.submit(config_from_args(args), args.name)
        print(
            f"job {job.id} {job.status}: model {job.name} (follow it with: python -m core jobs show {job.id})"
        )
    elif args.jobs_command == "list":
        _print_list(runner.list_jobs(), args.json)
    elif args.jobs_command == "show":
        _print_job(runner, runner.status(args.job), args.json, args.log_lines)
    elif args.jobs_command == "cancel":
        job = runner.cancel(args.job)
        stopping = " (stops after its current batch)" if job.status == "running" else ""
        print(f"job {job.id} {'cancelling' if job.status == 'running' else job.status}{stopping}")
    elif args.jobs_command == "resume":
        job = runner.resume(args.job)
        print(f"job {job.id} {job.status}: it continues from its last checkpoint")
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    from core.jobs import worker

    if args.stop:
        print("worker stopped" if worker.stop_worker() else "no worker was running")
        return 0
    return worker.main()


def _warn_about_settings() -> None:
    from core.jobs.settings import SettingsError, check_settings

    try:
        check_settings()
    except SettingsError as err:
        print(f"warning: {err} (no worker starts until it is fixed)", file=sys.stderr)


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _print_list(jobs: list[Job], as_json: bool) -> None:
    if as_json:
        print(json.dumps([job.to_dict() for job in jobs], indent=2))
        return
    if not jobs:
        print("no jobs yet (python -m core jobs submit --help)")
        return
    print(f"{'id':>4}  {'status':<11}  {'epochs':>7}  {'created':<19}  {'arch':<9}  {'scheme':<8}  name")
    for job in jobs:
        epochs = f"{job.epochs_done}/{job.epochs}"
        print(
            f"{job.id:>4}  {job.status:<11}  {epochs:>7}  {_when(job.created_at):<19}  "
            f"{job.params.get('architecture', '?'):<9}  {job.params.get('scheme', '?'):<8}  {job.name}"
        )


def _print_job(runner: Any, job: Job, as_json: bool, log_lines: int) -> None:
    metrics = runner.metrics(job.id)
    if as_json:
        print(json.dumps({**job.to_dict(), "metrics": metrics}, indent=2))
        return
    print(f"job {job.id}: {job.status}, epoch {job.epochs_done}/{job.epochs}, model {job.name}")
    print(
        f"  created {_when(job.created_at)}, started {_when(job.started_at)}, ended {_when(job.finished_at)}"
    )
    if job.error:
        print(f"  error: {job.error}")
    if job.model:
        print(f"  registered model: {job.model}")
    print(f"  folder: {job.folder}")
    print("  parameters: " + json.dumps(job.params, sort_keys=True))
    for row in metrics:
        print(
            f"  epoch {row['epoch']:3d}  loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
            f"val acc {row['val_accuracy']:.4f}  macro-F1 {row['val_macro_f1']:.4f}"
        )
    log = runner.log(job.id, log_lines)
    if log:
        print("  log:")
        sys.stdout.write("".join(f"    {line}" for line in log.splitlines(keepends=True)))
