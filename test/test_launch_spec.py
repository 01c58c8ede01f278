"""The launch spec and the process launcher (no ROS graph needed)."""

import os
import signal
import time

import pytest

from robot_memory.launch_spec import (
    SIM_PARAMETERS,
    NodeSpec,
    format_ros_arg,
    parse_override,
    stack,
)
from robot_memory.launcher import Launcher, NodeDiedError, node_command


def test_sim_stack_has_sim_expert_perception_memory_policy_safety_with_overrides_applied():
    nodes = {n.name: n for n in stack("sim", {"sim": {"seed": 7, "real_time_factor": 2}})}
    assert set(nodes) == {"sim", "expert", "perception", "memory", "planner", "policy", "safety"}
    assert nodes["planner"].parameters["use_sim_time"] is True  # refresh waits on sim time
    assert nodes["policy"].parameters["use_sim_time"] is True  # chunk stamps on sim time
    assert nodes["safety"].parameters["use_sim_time"] is True
    assert nodes["memory"].parameters["reset_on_start"] is False  # the store outlives a restart
    assert nodes["perception"].parameters["use_sim_time"] is True
    assert nodes["sim"].parameters["seed"] == 7
    # an int given for a double parameter is coerced (rclpy would refuse it)
    assert isinstance(nodes["sim"].parameters["real_time_factor"], float)
    assert nodes["sim"].parameters["cameras"] == SIM_PARAMETERS["cameras"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"simm": {"seed": 1}}, "no node"), ({"sim": {"sede": 1}}, "no parameter")],
)
def test_typos_in_overrides_are_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        stack("sim", overrides)


def test_real_and_replay_stacks_run_perception_and_memory():
    real = {n.name: n for n in stack("real")}
    replay = {n.name: n for n in stack("replay")}
    assert set(real) == {"perception", "memory", "planner", "policy", "safety"}
    assert set(replay) == {"perception", "memory"}  # replay never commands an arm
    assert "use_sim_time" not in real["memory"].parameters  # hardware runs on wall time
    assert real["memory"].parameters["reset_on_start"] is False  # memory persists on a robot
    assert replay["memory"].parameters["use_sim_time"] is True


def test_unknown_stack_is_an_error():
    with pytest.raises(ValueError, match="unknown stack"):
        stack("moon")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sim.seed:=3", ("sim", "seed", 3)),
        ("sim.real_time_factor:=2.5", ("sim", "real_time_factor", 2.5)),
        ("sim.panda_visual:=primitive", ("sim", "panda_visual", "primitive")),
        ('sim.cameras:=["front"]', ("sim", "cameras", ["front"])),
        ("expert.start_delay:=true", ("expert", "start_delay", True)),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_ros_args_formatting_round_trips_types():
    assert format_ros_arg(True) == "true"
    assert format_ros_arg(2.0) == "2.0"
    assert format_ros_arg(["front", "wrist"]) == "['front', 'wrist']"
    assert format_ros_arg("it's") == "'it''s'"
    cmd = node_command(stack("sim", {"sim": {"seed": 2}})[0], python="py")
    assert cmd[:3] == ["py", "-m", "robot_memory.nodes.sim_node"]
    assert "seed:=2" in cmd and "__node:=sim" in cmd


def test_launcher_fails_loudly_when_a_required_node_dies():
    dying = NodeSpec(
        name="dying", executable="-", module="robot_memory.no_such_module", description="test"
    )
    with Launcher([dying], output=None) as launched, pytest.raises(NodeDiedError) as err:
        launched.wait(timeout_s=20)
    assert err.value.name == "dying" and err.value.returncode != 0
    assert "No module named" in str(err.value)


def test_launcher_forwards_sigint_and_escalates_to_sigkill(tmp_path):
    (tmp_path / "polite_node.py").write_text(
        "import sys, time\n"
        "print('up', flush=True)\n"
        "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    sys.exit(0)\n"
    )
    (tmp_path / "stubborn_node.py").write_text(
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    specs = [
        NodeSpec(name="polite", executable="-", module="polite_node"),
        NodeSpec(name="stubborn", executable="-", module="stubborn_node"),
    ]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    launcher = Launcher(specs, env=env, output=None, shutdown_timeout_s=1.0)
    launcher.start()
    time.sleep(1.0)
    launcher.check()  # both alive
    codes = launcher.shutdown()
    assert codes["polite"] == 0  # clean exit on SIGINT
    assert codes["stubborn"] == -signal.SIGKILL  # ignored SIGINT and SIGTERM


def test_empty_stack_is_refused():
    with pytest.raises(ValueError, match="no nodes"):
        Launcher([])
