"""The launch spec and the process launcher (no ROS graph needed)."""

import importlib.util
import io
import os
import signal
import sys
import time
import types
from pathlib import Path

import pytest

from robot_memory.bringup.launch_spec import (
    NodeSpec,
    RestartBudget,
    format_ros_arg,
    parse_override,
    stack,
)
from robot_memory.bringup.launcher import Launcher, NodeDiedError, node_command
from robot_memory.bringup.node_parameters import SIM_PARAMETERS
from robot_memory.bringup.ros_env import PARENT_PID_ENV


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


# -- supervision in the spec ----------------------------------------------------------------
def test_memory_perception_planner_policy_and_safety_respawn_sim_and_expert_do_not():
    nodes = {n.name: n for n in stack("sim")}
    assert {n for n, s in nodes.items() if s.respawn} == {
        "memory",
        "perception",
        "planner",
        "policy",
        "safety",
    }
    assert nodes["safety"].respawn_delay_s < nodes["memory"].respawn_delay_s  # it holds the arm
    for name in ("real", "replay"):
        assert all(s.respawn for s in stack(name))
    # a respawned memory never wipes its store, even where the first start does
    replay_memory = {n.name: n for n in stack("replay")}["memory"]
    assert replay_memory.parameters["reset_on_start"] is True
    assert replay_memory.respawned().parameters["reset_on_start"] is False


def test_supervision_fields_are_overridable_and_checked():
    nodes = {
        n.name: n
        for n in stack(
            "sim",
            {
                "memory": {"respawn": False},
                "safety": {"respawn_delay_s": 1, "max_restarts": 3, "restart_window_s": 10},
            },
        )
    }
    assert nodes["memory"].respawn is False
    assert nodes["safety"].respawn_delay_s == 1.0 and nodes["safety"].max_restarts == 3
    assert isinstance(nodes["safety"].restart_window_s, float)
    assert "respawn" not in nodes["memory"].parameters  # not a ROS parameter
    with pytest.raises(ValueError, match="respawn"):
        stack("sim", {"memory": {"respawn": "yes"}})
    with pytest.raises(ValueError, match="max_restarts"):
        stack("sim", {"memory": {"max_restarts": 2.5}})


def test_restart_budget_counts_restarts_within_its_window():
    budget = RestartBudget(max_restarts=2, window_s=10.0)
    assert budget.allow(0.0) and budget.allow(1.0)
    assert not budget.allow(2.0)  # a third death within 10 s: give up
    assert budget.restarts == 2
    later = RestartBudget(max_restarts=2, window_s=10.0)
    assert all(later.allow(t) for t in (0.0, 6.0, 12.0, 18.0, 24.0))  # spread out: fine
    assert later.restarts == 5


# -- launch/robot_memory_launch.py, with stand-ins for launch and launch_ros ------------------
class _Action:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _fake_launch_modules(monkeypatch):
    launch = types.ModuleType("launch")
    launch.LaunchDescription = _Action
    actions = types.ModuleType("launch.actions")
    for name in ("DeclareLaunchArgument", "LogInfo", "OpaqueFunction", "SetEnvironmentVariable"):
        setattr(actions, name, type(name, (_Action,), {}))
    actions.Shutdown = type("Shutdown", (_Action,), {})
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = _Action
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = type("Node", (_Action,), {})
    for name, module in {
        "launch": launch,
        "launch.actions": actions,
        "launch.substitutions": substitutions,
        "launch_ros": launch_ros,
        "launch_ros.actions": ros_actions,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    path = Path(__file__).resolve().parents[1] / "launch" / "robot_memory_launch.py"
    spec = importlib.util.spec_from_file_location("robot_memory_launch_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ros2_launch_nodes_respawn_as_the_spec_says_and_give_up_loudly(monkeypatch):
    rml = _fake_launch_modules(monkeypatch)
    nodes = {s.name: s for s in stack("sim")}
    memory = rml.node_arguments(nodes["memory"])
    assert memory["respawn"] is True and memory["respawn_delay"] == nodes["memory"].respawn_delay_s
    sim = rml.node_arguments(nodes["sim"])
    assert sim["respawn"] is False and type(sim["on_exit"]).__name__ == "Shutdown"
    assert rml.node_arguments(nodes["safety"])["respawn"] is True

    exited = memory["on_exit"]  # called by launch on every exit of the process
    running = types.SimpleNamespace(is_shutdown=False)
    event = types.SimpleNamespace(returncode=-9)
    for restart in range(1, nodes["memory"].max_restarts + 1):
        log = exited(event, running)
        assert type(log).__name__ == "LogInfo" and f"restart {restart}" in log.kwargs["msg"]
    gave_up = exited(event, running)
    assert [type(a).__name__ for a in gave_up] == ["LogInfo", "Shutdown"]
    assert "giving up" in gave_up[1].kwargs["reason"]
    assert exited(event, types.SimpleNamespace(is_shutdown=True)) is None  # Ctrl-C: quiet

    description = rml.generate("sim")
    env = {a.args[0]: a.args[1] for a in description.args[0] if a.args and len(a.args) == 2}
    assert env[PARENT_PID_ENV] == str(os.getpid())  # the nodes watch this launch process


def test_launcher_respawns_a_crashing_node_then_gives_up_loudly(tmp_path):
    (tmp_path / "crashing_node.py").write_text(
        "import os, sys\n"
        "print('restart', os.environ['ROBOT_MEMORY_RESTART_COUNT'], flush=True)\n"
        "sys.exit(3)\n"
    )
    (tmp_path / "quitter_node.py").write_text("print('done', flush=True)\n")
    (tmp_path / "steady_node.py").write_text("import time\ntime.sleep(60)\n")
    crashing = NodeSpec(
        name="crashing",
        executable="-",
        module="crashing_node",
        respawn=True,
        respawn_delay_s=0.05,
        max_restarts=2,
    )
    quitter = NodeSpec(name="quitter", executable="-", module="quitter_node", required=False)
    steady = NodeSpec(name="steady", executable="-", module="steady_node")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    log = io.StringIO()
    launcher = Launcher([crashing, quitter, steady], env=env, output=log)
    with launcher, pytest.raises(NodeDiedError) as err:
        launcher.wait(timeout_s=60, poll_s=0.05)
    assert err.value.name == "crashing" and err.value.restarts == 2
    assert "giving up" in str(err.value)
    text = log.getvalue()
    for count in (0, 1, 2):  # each process saw its restart count
        assert f"[crashing] restart {count}" in text
    assert "crashing died (exit code 3); restart 2 in 0.05 s" in text
    assert "quitter exited (exit code 0); not required, not restarted" in text
