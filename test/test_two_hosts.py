"""The stack split over two hosts: the sim and the safety node in one network
namespace, perception, memory, planner and policy in another, DDS between
them over a veth link (UDP, multicast discovery on the subnet plus static
peers), and a memory task done end to end by the demo's driver on the robot
host. Skipped, with the reason, where network namespaces cannot be made (not
root); CI on this machine class runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from robot_memory.bringup.netns_hosts import NamespaceHosts, unavailable_reason
from robot_memory.bringup.ros_env import random_domain_id

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.xdist_group("stacks")]
REASON = unavailable_reason()


@pytest.mark.skipif(REASON is not None, reason=f"no test hosts: {REASON}")
@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_memory_task_across_two_hosts(tmp_path: Path, transport: str) -> None:
    env = {**os.environ, "ROS_DOMAIN_ID": str(random_domain_id()), "PYTHONUNBUFFERED": "1"}
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        env.pop(key, None)  # the test session's one-machine settings: --host sets its own
    cli = [sys.executable, "-m", "robot_memory.cli"]
    with NamespaceHosts.create() as hosts, (tmp_path / "compute.log").open("w") as log:
        ip = hosts.addresses
        compute = subprocess.Popen(
            hosts.command("compute", [*cli, "launch", "sim", "--host", "compute",
                                      "--peers", ip["robot"], "--image-transport", transport,
                                      "memory.reset_on_start:=true",
                                      f"memory.store_path:={tmp_path / 'memory.sqlite'}",
                                      f"planner.experience_path:={tmp_path / 'experience.json'}",
                                      "planner.max_attempts:=3", "policy.device:=cpu"]),
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            demo = subprocess.Popen(
                hosts.command("robot", [*cli, "demo", "--host", "robot", "--peers",
                                        ip["compute"], "--image-transport", transport,
                                        "--output", str(tmp_path / "demo"),
                                        "--timeout", "400"]),
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            demo_output = _wait_beside(demo, compute, tmp_path / "compute.log")
            received, sent = hosts.link_bytes("compute")
            print(f"compute host: {received / 1e6:.1f} MB received, {sent / 1e6:.1f} MB sent")
        finally:
            compute.send_signal(signal.SIGINT)
            try:
                compute.wait(timeout=30)
            except subprocess.TimeoutExpired:
                compute.kill()
    compute_log = (tmp_path / "compute.log").read_text()
    assert "host compute: perception, memory, planner, policy" in compute_log
    assert demo.returncode == 0, demo_output[-3000:] + compute_log[-3000:]
    assert "SUCCESS" in demo_output
    (report,) = (tmp_path / "demo").glob("*/report.md")
    assert "**Result:** SUCCESS" in report.read_text()
    # the cameras crossed the link: 2 cameras of 640x480 colour + depth for about a
    # minute, raw (1.5 MB a frame) or compressed (JPEG + PNG, several times smaller)
    if transport == "raw":
        assert received > 200e6, (received, sent)
    else:
        assert 5e6 < received < 100e6, (received, sent)
    # and commands came back: chunks from the policy (compute) to the safety node (robot)
    assert sent > 1e5


def _wait_beside(demo: subprocess.Popen, compute: subprocess.Popen, log: Path) -> str:
    """The demo's output once it exits; fails at once if the compute host's stack dies."""
    for _ in range(600):
        try:
            output, _ = demo.communicate(timeout=1.0)
            return output
        except subprocess.TimeoutExpired:
            if compute.poll() is not None:
                demo.kill()
                pytest.fail(f"the compute host's stack exited:\n{log.read_text()[-3000:]}")
    demo.kill()
    pytest.fail("the demo did not finish in 600 s")
