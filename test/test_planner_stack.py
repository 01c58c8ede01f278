"""One memory task end to end over DDS: the real sim, perception, memory, planner
(offline backend), policy and safety nodes. The wrist camera looks over the
table, the arm goes home, and the planner is told to put an object that no
camera has seen since into the bin; ground truth must show it there."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import rclpy

from robot_memory.apps.demo import DemoOptions, demo_specs
from robot_memory.apps.demo_session import StackDriver
from robot_memory.bringup.launcher import Launcher
from ros_helpers import TIMEOUT_SCALE

pytestmark = [pytest.mark.ros, pytest.mark.slow]
#: Seed 11: an object out of every camera's view at home that the policy picks
#: reliably (5 of 5 runs). Not the demo's seed 36, whose target is the green
#: sphere: a missed grasp can roll a sphere out of view ('could not find the green
#: sphere again' in two clean-clone runs). Not seed 5 either: its hidden blue
#: cylinder stands at the far edge of the spawn area (0.75 m from the arm's base),
#: where the policy's lift leaves the arm's top-down reach ('IK: pose ... not
#: reached') in 6 of 11 runs on 2026-12-05, with the code of that day and before.
SEED = 11


def test_the_stack_puts_an_object_out_of_view_in_the_bin(tmp_path: Path) -> None:
    opts = DemoOptions(output=tmp_path, seed=SEED, image_width=320, image_height=240)
    specs = demo_specs(opts, experience_path=tmp_path / "experience.json")
    specs = [
        s.with_parameters({"panda_visual": "primitive"}) if s.name == "sim" else s for s in specs
    ]
    specs = [s.with_parameters({"torch_threads": 1}) if s.name == "policy" else s for s in specs]
    log = io.StringIO()
    rclpy.init()
    driver = StackDriver()
    driver.deadline = time.monotonic() + 240 * TIMEOUT_SCALE  # a hang guard
    statuses = []
    try:
        with Launcher(specs, output=log) as launched:
            driver.check = launched.check
            driver.spin_until(driver.ready, "the stack up")
            seed = driver.find_hidden([SEED, SEED + 1, SEED + 2])
            assert seed >= 0, "no scene with a graspable object out of view at home"
            hidden = driver.hidden_objects(since=driver.t_home)
            assert hidden, "no graspable object out of view at home"
            target, _ = hidden[0]
            label = driver.truth.get(target).label
            final = driver.instruct(f"put the {label} in the bin", statuses.append)
            driver.spin_for(1.5)
            in_bin = driver.object_in(target, "bin")
            plans = list(driver.plans)
    finally:
        driver.destroy_node()
        rclpy.try_shutdown()
    assert final.state == "succeeded", (
        final,
        [s.message for s in statuses],
        log.getvalue()[-3000:],
    )
    assert plans and plans[0].steps[0].skill == "pick"
    assert in_bin, (target, log.getvalue()[-3000:])
