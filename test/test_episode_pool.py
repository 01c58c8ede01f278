"""Episodes fanned out over Ray give what the sequential run gives, per seed.

The commands run as users run them (their ``main``), once in this process and
once on a local Ray with 2 workers, on the same seeds; the rows must be equal
but for wall-clock fields. The pool itself is checked with plain workers:
every job once, rows in job order when asked, a worker error surfaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from robot_memory.distributed.episode_pool import run_jobs

os.environ.setdefault("MUJOCO_GL", "egl")
TIMING = {"wall_s", "cpu_s", "setup_wall_s", "observe_wall_s", "latency_ms"}
ray = pytest.importorskip("ray", reason="Ray is in requirements.txt; installed by make venv")


class Slow:
    """A worker whose jobs end out of order: job k sleeps (3 - k % 3) * 20 ms."""

    def __call__(self):
        import time

        pid = os.getpid()

        def work(k: int) -> dict:
            time.sleep((3 - k % 3) * 0.02)
            return {"k": k, "square": k * k, "pid": pid}

        return work


class Failing:
    def __call__(self):
        def work(k: int) -> dict:
            if k == 3:
                raise ValueError("job 3 is broken")
            return {"k": k}

        return work


def _rows(path: Path, key: tuple[str, ...]) -> dict:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {tuple(r[k] for k in key): {f: v for f, v in r.items() if f not in TIMING} for r in rows}


def test_local_pool_runs_every_job_once_in_order():
    seen: list[tuple[int, dict]] = []
    run_jobs(list(range(7)), Slow(), lambda job, row: seen.append((job, row)), progress=False)
    assert [job for job, _ in seen] == list(range(7))
    assert all(row["square"] == job * job for job, row in seen)
    assert len({row["pid"] for _, row in seen}) == 1 and seen[0][1]["pid"] == os.getpid()


@pytest.mark.slow
def test_ray_pool_two_workers_ordered_and_unordered():
    import sys

    # the workers defined here are not importable in Ray's processes: send them by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        loose: list[int] = []
        run_jobs(list(range(9)), Slow(), lambda j, r: loose.append(j), workers=2, progress=False)
        ordered: list[tuple[int, dict]] = []
        run_jobs(
            list(range(9)),
            Slow(),
            lambda j, r: ordered.append((j, r)),
            workers=2,
            ordered=True,
            progress=False,
        )
        with pytest.raises(ray.exceptions.RayTaskError, match="job 3 is broken"):
            run_jobs(list(range(6)), Failing(), lambda j, r: None, workers=2, progress=False)
    finally:
        ray.shutdown()
    assert sorted(loose) == list(range(9))
    assert [j for j, _ in ordered] == list(range(9))
    assert all(r["square"] == j * j for j, r in ordered)
    pids = {r["pid"] for _, r in ordered}
    assert len(pids) == 2 and os.getpid() not in pids  # two actor processes did the work


@pytest.mark.slow
def test_eval_tasks_on_ray_matches_sequential(tmp_path):
    from robot_memory.tasks.eval_tasks import main

    # where_is on an odd seed answers "last seen N s ago": memory's clock must restart too
    args = ["--tasks", "bin_single,where_is", "--episodes", "2"]
    assert main([*args, "--output", str(tmp_path / "seq")]) == 0
    assert main([*args, "--output", str(tmp_path / "ray"), "--workers", "2"]) == 0
    key = ("task", "seed", "condition")
    seq, fanned = (_rows(tmp_path / d / "episodes.jsonl", key) for d in ("seq", "ray"))
    assert len(seq) == 4 and seq.keys() == fanned.keys()
    for k in seq:
        assert seq[k] == fanned[k], k
    assert not any(r.get("setup_error") for r in seq.values())
    assert any(r["skills"] for r in seq.values()) and any(r["answer"] for r in seq.values())
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert report["workers"] == 2
    ok = sum(r["success"] for r in seq.values())
    assert sum(t["full"]["successes"] for t in report["tasks"].values()) == ok


@pytest.mark.slow
def test_collect_demos_on_ray_same_dataset_and_resumes(tmp_path):
    from robot_memory.learning.dataset import read_meta
    from robot_memory.learning.demonstrations import main

    assert main(["--out", str(tmp_path / "seq"), "--episodes", "2"]) == 0
    # on Ray, in two goes: the second finds seed 0 there and adds only seed 1
    assert main(["--out", str(tmp_path / "ray"), "--episodes", "1", "--workers", "2"]) == 0
    assert main(["--out", str(tmp_path / "ray"), "--episodes", "2", "--workers", "2"]) == 0
    seq, fanned = (read_meta(tmp_path / d)["episodes"] for d in ("seq", "ray"))
    assert [(e["skill"], e["seed"]) for e in seq] == [
        ("pick", 0),
        ("place", 0),
        ("pick", 1),
        ("place", 1),
    ]
    assert fanned == seq
    for e in seq:
        name = f"episode_{e['index']:06d}.npz"
        a, b = np.load(tmp_path / "seq" / name), np.load(tmp_path / "ray" / name)
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}:{k}")


@pytest.mark.slow
def test_eval_policy_on_ray_matches_sequential_and_resumes(tmp_path):
    from robot_memory.learning.evaluation import main

    args = ["--episodes", "3", "--skills", "pick", "--videos", "0"]
    assert main([*args, "--out", str(tmp_path / "seq")]) == 0
    two = ["--episodes", "2", "--skills", "pick", "--videos", "0", "--workers", "2"]
    assert main([*two, "--out", str(tmp_path / "ray")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--workers", "2", "--resume"]) == 0
    key = ("skill", "seed")
    seq, fanned = (_rows(tmp_path / d / "episodes.jsonl", key) for d in ("seq", "ray"))
    drop = ("chunk_latency_s", "sample_latency_s")
    for rows in (seq, fanned):
        for r in rows.values():
            for f in drop:
                r.pop(f)
    assert list(seq) == [("pick", 10000), ("pick", 10001), ("pick", 10002)]
    assert fanned == seq
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert report["skills"]["pick"]["episodes"] == 3


@pytest.mark.slow
def test_eval_qa_on_ray_matches_sequential(tmp_path):
    from robot_memory.tasks.eval_qa import main

    args = ["--seeds", "100-101", "--per-kind", "1", "--days", "2", "--conditions", "full"]
    assert main([*args, "--output", str(tmp_path / "seq")]) == 0
    assert main([*args, "--output", str(tmp_path / "ray"), "--workers", "2"]) == 0
    seq, fanned = (
        [{k: v for k, v in json.loads(x).items() if k not in TIMING}
         for x in (tmp_path / d / "questions.jsonl").read_text().splitlines()]
        for d in ("seq", "ray")
    )  # fmt: skip
    assert seq and fanned == seq
    assert {r["seed"] for r in seq} == {100, 101}
