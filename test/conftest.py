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

import pytest

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


#: xdist groups of modules whose tests start several node processes with the
#: Launcher. "stacks": whole stacks (4-7 nodes), one after the other on one
#: worker; a module-scoped stack fixture keeps its tests on one worker too.
#: (test_supervision marks its whole-stack test itself; its other tests start
#: one or two nodes and go to either worker.)
MODULE_GROUPS = {
    "test_crash_probes": "stacks",
    "test_expert_stack": "stacks",
    "test_memory_stack": "stacks",
    "test_planner_stack": "stacks",
    "test_policy_stack": "stacks",
    "test_sim_stack": "sim_node",
    "test_typed_stack_bag": "typed_bag",
    "test_episode_pool": "ray",  # one local Ray at a time
}


def pytest_itemcollected(item) -> None:
    """Under pytest-xdist (``make test``: ``-n 2 --dist loadgroup``) every
    module's tests run on one worker, so a module-scoped fixture (a recorded
    bag, a trained checkpoint, a running node) is built once, not once per
    worker; the modules of :data:`MODULE_GROUPS` "stacks" share a group and run
    one after the other: two whole stacks at once on two cores only slow each
    other down. (Marked as each item is collected: xdist reads the groups in
    its own ``pytest_collection_modifyitems``, which runs before a conftest's.)"""
    if item.get_closest_marker("xdist_group") is not None:
        return
    module = item.module.__name__.rpartition(".")[2]
    item.add_marker(pytest.mark.xdist_group(MODULE_GROUPS.get(module, module)))


@pytest.fixture(scope="module")
def rendered():
    """One front-camera RGB-D frame of the sim's tabletop (seed 1, 320x240):
    (rgb, depth, optical frame position, its quaternion wxyz, K)."""
    from robot_memory.sim.cameras import CameraRig
    from robot_memory.sim.runner import RunnerConfig, SimulationRunner

    runner = SimulationRunner(RunnerConfig(seed=1, camera_rate=0, ground_truth_rate=0))
    rig = CameraRig(runner.physics.model, 320, 240, ("front",))
    rgb, depth = rig.render(runner.physics, "front")
    pos, quat = rig.optical_pose(runner.physics, "front")
    k = rig.intrinsics("front")
    rig.close()
    return rgb, depth, pos, quat, k
