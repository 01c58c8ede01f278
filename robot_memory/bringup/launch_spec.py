"""The one place that says which nodes make up each stack (ROS-free).

Two front ends read it:

* ``launch/<stack>.launch.py`` builds launch_ros ``Node`` actions from it, for
  users with a system ROS 2 install (``ros2 launch robot_memory sim.launch.py``);
* ``robot-memory launch <stack>`` (:mod:`robot_memory.bringup.launcher`) starts the same
  nodes as processes in the pip-only world, where ``launch`` is missing.

Parameters, remappings and supervision (which nodes respawn when they die,
how soon, how often before the stack gives up) live here and nowhere else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from robot_memory.bringup.node_parameters import (
    EXPERT_PARAMETERS,
    IMAGE_TRANSPORTS,
    MEMORY_PARAMETERS,
    PERCEPTION_PARAMETERS,
    PLANNER_PARAMETERS,
    POLICY_PARAMETERS,
    SAFETY_PARAMETERS,
    SIM_PARAMETERS,
    VIEWER_PARAMETERS,
    ParamValue,
)


@dataclass(frozen=True)
class NodeSpec:
    """One node of a stack."""

    name: str  # ROS node name
    executable: str  # console script (installed under lib/robot_memory by colcon)
    module: str  # python module with main(), used by the pip-only launcher
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    required: bool = True  # if it dies (and is not respawned), the whole stack goes down
    description: str = ""
    # -- supervision (robot_memory.bringup.launcher; launch_ros Node(respawn=...)) --
    respawn: bool = False  # start it again when it exits, whatever its exit code
    respawn_delay_s: float = 1.0
    max_restarts: int = 5  # more restarts than this within restart_window_s: give up
    restart_window_s: float = 60.0
    # parameters a respawned process gets on top of ``parameters`` (memory:
    # reset_on_start false, so a restart never wipes the store a first start kept)
    respawn_parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    # which machine of a two-host cell runs it (``robot-memory launch --host``):
    # "robot" next to the arm (sim or drivers, safety), "compute" on the GPU box
    host: str = "compute"

    def with_parameters(self, overrides: Mapping[str, ParamValue]) -> NodeSpec:
        return replace(self, parameters={**self.parameters, **overrides})

    def respawned(self) -> NodeSpec:
        """The spec a restarted process runs with."""
        return self.with_parameters(self.respawn_parameters)


#: The machines of a two-host cell (docs/deployment.md): the robot PC runs the
#: simulator (or the arm's drivers) and the safety node, which must stay next to
#: the arm; the compute host runs perception, memory, the planner and the policy.
HOSTS = ("robot", "compute")

#: NodeSpec fields that ``stack()`` overrides accept beside parameters
#: (``memory.respawn:=false``, ``safety.respawn_delay_s:=0.5``).
SUPERVISION_FIELDS = ("respawn", "respawn_delay_s", "max_restarts", "restart_window_s")


def safety_node(**overrides: ParamValue) -> NodeSpec:
    # The one node between the policy and the arm: it never exits on its own
    # (spin_node survives exceptions), and if it dies anyway it is back quickly.
    return NodeSpec(
        name="safety",
        executable="safety_node",
        module="robot_memory.nodes.safety_node",
        parameters={**SAFETY_PARAMETERS, **overrides},
        description="checks /policy/action_chunk, drives the arm and gripper controllers",
        host="robot",
        respawn=True,
        respawn_delay_s=0.2,
        max_restarts=10,
    )


def policy_node(**overrides: ParamValue) -> NodeSpec:
    return NodeSpec(
        name="policy",
        executable="policy_node",
        module="robot_memory.nodes.policy_node",
        parameters={**POLICY_PARAMETERS, **overrides},
        respawn=True,
        description="diffusion policy: /policy/run_skill grounded in memory -> action chunks",
    )


def planner_node(**overrides: ParamValue) -> NodeSpec:
    return NodeSpec(
        name="planner",
        executable="planner_node",
        module="robot_memory.nodes.planner_node",
        parameters={**PLANNER_PARAMETERS, **overrides},
        respawn=True,
        description="task planner: /planner/execute -> plan of skills as /policy/run_skill goals",
    )


def perception_node(**overrides: ParamValue) -> NodeSpec:
    return NodeSpec(
        name="perception",
        executable="perception_node",
        module="robot_memory.nodes.perception_node",
        parameters={**PERCEPTION_PARAMETERS, **overrides},
        respawn=True,
        description="RGB-D -> objects in the world frame on /perception/observations",
    )


def memory_node(**overrides: ParamValue) -> NodeSpec:
    return NodeSpec(
        name="memory",
        executable="memory_node",
        module="robot_memory.nodes.memory_node",
        parameters={**MEMORY_PARAMETERS, **overrides},
        respawn=True,
        respawn_parameters={"reset_on_start": False},  # a restart keeps the store
        description="scene graph memory: /memory/scene_graph, markers, queries",
    )


def viewer_node(**overrides: ParamValue) -> NodeSpec:
    # Not part of any stack: `robot-memory view` starts it beside one (or a replay).
    return NodeSpec(
        name="viewer",
        executable="viewer_node",
        module="robot_memory.nodes.viewer_node",
        parameters={**VIEWER_PARAMETERS, **overrides},
        required=True,
        description="the stack live in a browser (Rerun web viewer): cameras, arm, memory, plan",
    )


def sim_node() -> NodeSpec:
    return NodeSpec(
        name="sim",
        executable="sim_node",
        module="robot_memory.nodes.sim_node",
        parameters=dict(SIM_PARAMETERS),
        description="MuJoCo Panda cell on real-driver topics",
        host="robot",
    )


def expert_node() -> NodeSpec:
    return NodeSpec(
        name="expert",
        executable="expert_node",
        module="robot_memory.nodes.expert_node",
        parameters={**EXPERT_PARAMETERS, "use_sim_time": True},
        description="scripted pick-and-place through the controller topics (sim only)",
        host="robot",
    )


def _sim_stack() -> list[NodeSpec]:
    # Memory keeps out/memory/sim.sqlite across restarts of the stack, like on
    # a robot; a fresh episode wipes it explicitly (memory.reset_on_start:=true,
    # as the demo does, or /memory/reset).
    return [
        sim_node(),
        expert_node(),
        perception_node(use_sim_time=True),
        memory_node(
            use_sim_time=True,
            store_path="out/memory/sim.sqlite",
            allow_remote_reset=True,  # the planner's memoryless ablation
        ),
        planner_node(
            use_sim_time=True, experience_path="out/memory/experience.json", allow_memoryless=True
        ),
        policy_node(use_sim_time=True),
        safety_node(use_sim_time=True),
    ]


def _real_stack() -> list[NodeSpec]:
    # On hardware the cameras come from realsense2_camera and the arm from
    # ros2_control (joint_state_broadcaster + JointTrajectoryController), both
    # already on the contract's topic names; docs/hardware.md has the bring-up.
    # The memory persists across runs (~/.robot_memory/memory.sqlite). The
    # safety node is the only node that writes to the arm's controller topics.
    return [perception_node(), memory_node(), planner_node(), policy_node(), safety_node()]


def _replay_stack() -> list[NodeSpec]:
    # Perception + memory on bag time, fed by `robot-memory replay BAG`; a
    # fresh memory each run so results don't depend on an earlier replay (a
    # respawned memory keeps what this run put in: respawn_parameters).
    return [
        perception_node(use_sim_time=True),
        memory_node(use_sim_time=True, store_path="out/memory/replay.sqlite", reset_on_start=True),
    ]


STACKS = {"sim": _sim_stack, "real": _real_stack, "replay": _replay_stack}


def stack(
    name: str,
    overrides: Mapping[str, Mapping[str, ParamValue]] | None = None,
    host: str | None = None,
    image_transport: str | None = None,
) -> list[NodeSpec]:
    """The nodes of stack ``name`` with per-node parameter ``overrides``
    (``{"sim": {"seed": 3}}``); with ``host``, only the nodes that machine runs
    (:data:`HOSTS`; overrides may still name the other machine's nodes); with
    ``image_transport`` (:data:`IMAGE_TRANSPORTS`), how every node publishes
    and reads the camera images (``overrides`` still win). Unknown stacks,
    hosts, transports, nodes or parameters are errors: a typo must not
    silently launch defaults."""
    if name not in STACKS:
        raise ValueError(f"unknown stack {name!r}; choose from {sorted(STACKS)}")
    if host is not None and host not in HOSTS:
        raise ValueError(f"unknown host {host!r}; choose from {list(HOSTS)}")
    nodes = STACKS[name]()
    if image_transport is not None:
        nodes = [_with_image_transport(n, image_transport) for n in nodes]
    overrides = dict(overrides or {})
    by_name = {n.name: n for n in nodes}
    unknown_nodes = set(overrides) - set(by_name)
    if unknown_nodes:
        raise ValueError(
            f"stack {name!r} has no node(s) {sorted(unknown_nodes)}; nodes: {sorted(by_name)}"
        )
    out = []
    for node in nodes:
        params = dict(overrides.get(node.name, {}))
        supervision = {k: params.pop(k) for k in SUPERVISION_FIELDS if k in params}
        if supervision:
            node = _with_supervision(node, supervision)
        unknown = set(params) - set(node.parameters) - {"use_sim_time"}
        if unknown:
            raise ValueError(
                f"node {node.name!r} has no parameter(s) {sorted(unknown)}; "
                f"parameters: {sorted(node.parameters)}"
            )
        for key, value in params.items():
            default = node.parameters.get(key)
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                params[key] = float(value)  # rclpy rejects an int for a double parameter
        out.append(node.with_parameters(params))
    return [n for n in out if host is None or n.host == host]


def _with_image_transport(node: NodeSpec, transport: str) -> NodeSpec:
    if transport not in IMAGE_TRANSPORTS:
        raise ValueError(f"unknown image transport {transport!r}; choose from {IMAGE_TRANSPORTS}")
    if "image_transport" in node.parameters:  # the sim publishes, perception reads
        return node.with_parameters({"image_transport": transport})
    topic = node.parameters.get("image_topic")  # the planner's VLM frame
    if isinstance(topic, str) and topic.endswith("/image_raw") and transport == "compressed":
        return node.with_parameters({"image_topic": f"{topic}/compressed"})
    return node


def _with_supervision(node: NodeSpec, values: Mapping[str, ParamValue]) -> NodeSpec:
    fields: dict[str, Any] = {}
    for key, value in values.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if key == "respawn" and not isinstance(value, bool):
            raise ValueError(f"{node.name}.respawn must be true or false, got {value!r}")
        if key == "max_restarts" and not (number and isinstance(value, int)):
            raise ValueError(f"{node.name}.max_restarts must be an integer, got {value!r}")
        if key.endswith("_s") and not number:
            raise ValueError(f"{node.name}.{key} must be a number of seconds, got {value!r}")
        fields[key] = float(value) if key.endswith("_s") else value  # type: ignore[arg-type]
    return replace(node, **fields)


class RestartBudget:
    """A node may be restarted at most ``max_restarts`` times within any
    ``window_s`` seconds; past that, its supervisor gives up (ROS-free: used by
    the pip-only launcher and by the ``ros2 launch`` files)."""

    def __init__(self, max_restarts: int, window_s: float) -> None:
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.restarts = 0  # granted so far, in all
        self._recent: deque[float] = deque()

    @classmethod
    def of(cls, spec: NodeSpec) -> RestartBudget:
        return cls(spec.max_restarts, spec.restart_window_s)

    def allow(self, now_s: float) -> bool:
        """The node died at ``now_s``: may it be restarted?"""
        self._recent.append(now_s)
        while self._recent and now_s - self._recent[0] > self.window_s:
            self._recent.popleft()
        if len(self._recent) > self.max_restarts:
            return False
        self.restarts += 1
        return True


def parse_override(text: str, default_node: str | None = None) -> tuple[str, str, ParamValue]:
    """Parse ``node.param:=value`` (or ``param:=value`` with ``default_node``)
    as used on the command line; the value is read as YAML-like scalar/list."""
    if ":=" not in text:
        raise ValueError(f"expected node.param:=value, got {text!r}")
    key, raw = text.split(":=", 1)
    if "." in key:
        node, param = key.split(".", 1)
    elif default_node is not None:
        node, param = default_node, key
    else:
        raise ValueError(f"name the node: {text!r} -> e.g. sim.{key}:={raw}")
    return node, param, _parse_value(raw)


def _parse_value(raw: str) -> ParamValue:
    import json

    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if isinstance(value, list | int | float | str):
        return value
    return raw


def format_ros_arg(value: ParamValue) -> str:
    """Format a value for ``--ros-args -p name:=value`` (parsed as YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(format_ros_arg(v) for v in value) + "]"
    text = str(value)
    return "'" + text.replace("'", "''") + "'"
