"""Test-session set-up: DDS on loopback with the project's Fast DDS profile and
a ROS_DOMAIN_ID of this run's own, set before anything imports rclpy; one
OpenMP/torch thread per process (CI has 2 cores shared by the test process and
the nodes it starts: oversubscribed OpenMP spin-waits slow torch 10-100x)."""

from __future__ import annotations

import os
import signal

os.environ.setdefault("OMP_NUM_THREADS", "1")

# Started in the background by a non-interactive shell (``make test &``), this
# process and every child it starts would ignore SIGINT: the tests that stop
# nodes with Ctrl-C need it delivered (children of a process with a handler
# get the default disposition at exec).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import hashlib

from robot_memory.bringup.ros_env import apply_to_current_process, random_domain_id


def _domain_id() -> int:
    """Random per run; under pytest-xdist (``make test-fast``) one per worker,
    distinct within the run: the run's id picks a base, the worker number adds."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    if not worker.startswith("gw"):
        return random_domain_id()
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
    base = int(hashlib.sha256(run.encode()).hexdigest(), 16)
    return 1 + (base + int(worker[2:])) % 101


if "ROS_DOMAIN_ID" not in os.environ or os.environ.get("ROBOT_MEMORY_TEST_DOMAIN") != "keep":
    apply_to_current_process(domain_id=_domain_id())
else:
    apply_to_current_process()


#: Modules whose tests start whole stacks (many node processes) with the Launcher.
STACK_MODULES = {
    "test_crash_probes",
    "test_expert_stack",
    "test_memory_stack",
    "test_planner_stack",
    "test_policy_stack",
    "test_sim_stack",
    "test_supervision",
    "test_typed_stack_bag",
}


def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (``make test``: ``-n 2 --dist loadgroup``) the tests
    that start whole stacks run on one worker, one after the other: two stacks
    at once on two cores only slow each other down (every test on either
    worker: 10.8 min and two load failures, vs 8.9 min sequential). The other
    worker takes the in-process tests and the single-node ROS tests."""
    import pytest

    for item in items:
        if item.module.__name__.rpartition(".")[2] in STACK_MODULES:
            item.add_marker(pytest.mark.xdist_group("stacks"))
