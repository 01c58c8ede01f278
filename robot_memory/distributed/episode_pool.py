"""Run seeded episodes in this process or fanned out over Ray, one stack per worker.

The evaluation commands (``eval-tasks``, ``eval-policy``, ``eval-qa``,
``collect-demos``) describe their work as a list of jobs (task, seed, ...)
and a picklable *worker factory*: a callable that builds the expensive
per-process state once (simulator, policy, memory) and returns a function
``job -> row`` (a JSON-able dict). :func:`run_jobs` then runs the jobs

* in this process, one after another, when ``workers <= 1`` and no Ray
  address is given (the default, and what the tests compare against);
* on Ray otherwise: ``workers`` actors (one CPU each), each with its own
  stack, fed from a queue as they finish (``ray.util.ActorPool``). With no
  ``ray_address`` a local Ray starts with ``workers`` CPUs and stops at the
  end; with one (``auto`` or ``ray://host:10001``) the actors go to that
  cluster, whose nodes must have this project and its virtual environment
  at the same path (docs/deployment.md).

An episode is a function of its job alone (the commands reseed the
simulator, the cameras' noise and the policy's sampler per episode), so the
rows are the same whichever worker runs a job, in whatever order. Rows reach
``on_row`` in completion order, in the caller's process, which appends them
to its ``.jsonl`` as they come: an interrupted run resumes by skipping the
jobs already there. One progress bar counts the jobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from tqdm import tqdm

Job = Hashable
Row = dict[str, Any]
WorkerFactory = Callable[[], Callable[[Any], Row]]
#: Environment the workers need to render and to keep to one core each.
WORKER_ENV = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "EGL_PLATFORM")


class RayUnavailableError(RuntimeError):
    """Ray was asked for but is not installed."""


def add_arguments(parser: Any) -> None:
    """``--workers`` and ``--ray-address`` for an argparse parser."""
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="episodes in parallel on Ray (one process each); 1 = in this process",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="an existing Ray cluster (auto, or ray://host:10001); default: a local Ray",
    )


def uses_ray(workers: int, ray_address: str | None) -> bool:
    return workers > 1 or ray_address is not None


def run_jobs(
    jobs: Sequence[Any],
    make_worker: WorkerFactory,
    on_row: Callable[[Any, Row], None],
    *,
    workers: int = 1,
    ray_address: str | None = None,
    desc: str = "episodes",
    postfix: Callable[[], dict] | None = None,
    ordered: bool = False,
    progress: bool = True,
    use_ray: bool | None = None,
) -> None:
    """Run every job; ``on_row(job, row)`` as each finishes, or, with
    ``ordered``, in the jobs' order (rows that finish early wait for the ones
    before them: for outputs whose order matters, such as a dataset).
    ``use_ray`` None: Ray when ``workers > 1`` or an address is given."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not jobs:
        return
    numbered = list(enumerate(jobs))
    waiting: dict[int, Row] = {}
    next_out = 0
    bar = tqdm(total=len(jobs), desc=desc, unit="ep", disable=not progress)
    try:
        if uses_ray(workers, ray_address) if use_ray is None else use_ray:
            results = _ray_results(numbered, make_worker, workers, ray_address)
        else:
            results = _local_results(numbered, make_worker)
        for i, row in results:
            waiting[i] = row
            ready = sorted(waiting) if not ordered else []
            while ordered and next_out in waiting:
                ready.append(next_out)
                next_out += 1
            for k in ready:
                on_row(jobs[k], waiting.pop(k))
            bar.update(1)
            if postfix is not None:
                bar.set_postfix(postfix())
    finally:
        bar.close()


def _local_results(numbered: list[tuple[int, Any]], make_worker: WorkerFactory):
    work = make_worker()
    for i, job in numbered:
        yield i, work(job)


class _Host:
    """One Ray actor: builds its stack once, then runs jobs."""

    def __init__(self, make_worker: WorkerFactory) -> None:
        self.work = make_worker()

    def run(self, numbered: tuple[int, Any]) -> tuple[int, Row]:
        i, job = numbered
        return i, self.work(job)


def _ray_results(numbered: list, make_worker: WorkerFactory, workers: int, address):
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as err:
        raise RayUnavailableError(
            "--workers > 1 and --ray-address run on Ray, which is not installed: "
            "pip install 'ray==2.60.0' (or the project's [ray] extra)"
        ) from err
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    env.setdefault("MUJOCO_GL", "egl")
    # one core per worker: OpenMP (torch, Open3D) and Mesa's llvmpipe rasteriser
    # (MuJoCo's EGL rendering without a GPU) would otherwise each start a thread per core
    env.update(OMP_NUM_THREADS="1", LP_NUM_THREADS="1")
    started_here = not ray.is_initialized()
    if started_here and not address:
        # Ray starts its workers at niceness 15: beside any other load (a build, a
        # second run) they got almost no CPU (3.8 % each beside two busy loops).
        # An evaluation is the job here, not background work; set it to override.
        os.environ.setdefault("RAY_worker_niceness", "0")
    if started_here:
        local = {} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(
            address=address,
            log_to_driver=False,  # one progress bar; worker logs stay in Ray's session folder
            runtime_env={"env_vars": env},
            **local,
        )
    try:
        actor = ray.remote(num_cpus=1)(_Host)
        pool = ActorPool([actor.remote(make_worker) for _ in range(min(workers, len(numbered)))])
        yield from pool.map_unordered(lambda a, job: a.run.remote(job), numbered)
    finally:
        if started_here:
            ray.shutdown()
