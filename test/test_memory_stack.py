"""Perception and memory nodes as separate processes over real DDS.

* sim + perception + memory: objects reach the scene graph
  (robot_memory_interfaces/msg/SceneGraph) and the /memory/query service
  (QueryMemory) finds them;
* a service query from a separate process: ``robot-memory query`` (JSON and
  table) against a running memory node;
* the memory node killed with SIGKILL restarts with the same ids;
* malformed input (a bad query, time going backwards, a refused /memory/reset)
  is answered or rejected with a reason and counted, while the graph stays intact.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from robot_memory_interfaces.msg import GroundTruth as GroundTruthMsg
from robot_memory_interfaces.msg import ObservationFrame as ObservationFrameRos
from robot_memory_interfaces.msg import SceneGraph
from robot_memory_interfaces.srv import QueryMemory
from std_srvs.srv import Trigger

from robot_memory.bringup.launch_spec import memory_node, stack
from robot_memory.bringup.launcher import Launcher
from robot_memory.nodes.memory_conversions import observation_frame_to_msg, scene_graph_from_msg
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.query_conversions import answer_from_response, query_to_request
from robot_memory.nodes.sim_conversions import ground_truth_from_msg
from robot_memory.perception.observations import (
    CameraView,
    ObjectObservation,
    ObservationFrame,
    frame_to_payload,
)
from robot_memory.schemas import MemoryAnswer, MemoryQuery, SceneGraphMsg
from ros_helpers import Probe, health_value, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros


def graph_of(probe: Probe) -> SceneGraphMsg | None:
    msg = probe.last("/memory/scene_graph")
    return None if msg is None else scene_graph_from_msg(msg)


def make_probe(name: str) -> Probe:
    probe = Probe(name)
    probe.listen(SceneGraph, "/memory/scene_graph", LATCHED)
    probe.listen(DiagnosticArray, "/diagnostics", 50)
    return probe


def call(probe: Probe, client, request, timeout_s: float = 30.0, check=None):
    """One service call from the probe, spun until the response is there."""
    spin_until(probe, client.service_is_ready, timeout_s, check, f"{client.srv_name} up")
    future = client.call_async(request)
    spin_until(probe, future.done, timeout_s, check, f"the {client.srv_name} response")
    return future.result()


def ask(probe: Probe, client, check=None, **fields) -> MemoryAnswer:
    query = MemoryQuery(id="q", **fields)
    return answer_from_response(call(probe, client, query_to_request(query), check=check), query)


# -- sim + perception + memory ----------------------------------------------------------
def test_sim_perception_memory_answer_a_query_over_dds(tmp_path):
    log = io.StringIO()
    specs = stack(
        "sim",
        {
            "sim": {"camera_rate": 5.0, "seed": 3},
            "memory": {"store_path": str(tmp_path / "memory.sqlite")},
        },
    )
    specs = [s for s in specs if s.name != "expert"]
    rclpy.init()
    probe = make_probe("memory_stack_probe")
    probe.listen(GroundTruthMsg, "/sim/ground_truth", COMMAND)
    client = probe.create_client(QueryMemory, "/memory/query")
    launcher = Launcher(specs, output=log)
    launcher.start()
    try:
        spin_until(
            probe,
            lambda: (g := graph_of(probe)) is not None and len(g.objects) >= 2,
            timeout_s=120,
            check=launcher.check,
            what="a scene graph with objects",
        )
        spin_until(probe, lambda: probe.last("/sim/ground_truth") is not None, 30, launcher.check)
        truth = ground_truth_from_msg(probe.last("/sim/ground_truth"))
        graph = graph_of(probe)
        gt_by_label = {o.label: o for o in truth.objects}
        known = [o for o in graph.objects if o.label in gt_by_label]
        assert known, f"no remembered object has a true label: {[o.label for o in graph.objects]}"
        target = known[0]
        truth_pos = np.array(gt_by_label[target.label].position)
        assert np.linalg.norm(np.array(target.centroid) - truth_pos) < 0.03

        # the text model loads in the background (seconds; minutes on a loaded machine)
        spin_until(
            probe,
            lambda: health_value(probe, "memory", "embedder") == "ready",
            timeout_s=120,
            check=launcher.check,
            what="memory's text embedder",
        )
        found = ask(probe, client, launcher.check, kind="find", text=target.label)
        assert found.ok, found.error
        assert found.results[0]["id"] == target.id

        bad = query_to_request(MemoryQuery(id="x", kind="graph"))
        bad.kind = "teleport"
        response = call(probe, client, bad, check=launcher.check)
        assert not response.ok and "invalid payload" in response.error
        spin_until(
            probe,
            lambda: rejected(probe, "memory").get("invalid payload", 0) >= 1,
            timeout_s=10,
            what="the bad query counted on /diagnostics",
        )
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()


# -- the memory node alone: SIGKILL, restart, bad input ------------------------------------
LOOK_DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # optical z along -world z


def synthetic_frame(
    stamp: float, objects: list[tuple[str, tuple[float, float]]]
) -> ObservationFrameRos:
    k = np.array([[60.0, 0.0, 39.5], [0.0, 60.0, 29.5], [0.0, 0.0, 1.0]])
    view = CameraView(
        camera="front",
        stamp=stamp,
        intrinsics=k,
        position=np.array([0.1, 0.0, 0.6]),
        quaternion=LOOK_DOWN,
        depth=np.full((60, 80), 0.6, dtype=np.float32),
    )
    observed = []
    for label, (x, y) in objects:
        c = np.array([x, y, 0.025])
        color, shape = label.split()
        observed.append(
            ObjectObservation(
                centroid=c,
                bbox_min=c - 0.025,
                bbox_max=c + 0.025,
                color=color,
                rgb=(0.5, 0.5, 0.5),
                shape=shape,
                label=label,
                confidence=0.9,
                camera="front",
                stamp=stamp,
                points=c + np.random.default_rng(0).uniform(-0.02, 0.02, (20, 3)),
                n_points=400,
            )
        )
    return observation_frame_to_msg(frame_to_payload(ObservationFrame(view, observed)))


TWO_OBJECTS = [("red cube", (0.1, -0.1)), ("blue cylinder", (0.0, 0.15))]


def feed_two_objects(probe: Probe, obs_pub, launcher) -> None:
    """Ten synthetic frames of a red cube and a blue cylinder, until memory's
    graph has both."""
    for i in range(10):
        obs_pub.publish(synthetic_frame(10.0 + 0.1 * i, TWO_OBJECTS))
        spin_for(probe, 0.1)
    spin_until(
        probe,
        lambda: (g := graph_of(probe)) is not None and len(g.objects) == 2,
        timeout_s=30,
        check=launcher.check,
        what="two objects in the graph",
    )


def start_memory(store, log) -> Launcher:
    spec = memory_node(store_path=str(store), preload_embedder=False, publish_period_s=0.05)
    launcher = Launcher([spec], output=log)
    launcher.start()
    return launcher


def robot_memory_query(*args: str) -> subprocess.CompletedProcess:
    """``robot-memory query ...`` in its own process (the DDS settings of this run)."""
    command = [sys.executable, "-m", "robot_memory.cli", "query", *args, "--timeout", "30"]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, env=os.environ)


def test_memory_node_survives_sigkill_with_ids_and_rejects_bad_input(tmp_path):
    store = tmp_path / "memory.sqlite"
    log = io.StringIO()
    rclpy.init()
    probe = make_probe("memory_kill_probe")
    obs_pub = probe.create_publisher(ObservationFrameRos, "/perception/observations", 50)
    client = probe.create_client(QueryMemory, "/memory/query")
    reset = probe.create_client(Trigger, "/memory/reset")
    launcher = start_memory(store, log)
    try:
        spin_until(
            probe,
            lambda: graph_of(probe) is not None and obs_pub.get_subscription_count() > 0,
            timeout_s=30,
            check=launcher.check,
            what="the memory node up (its first, empty graph)",
        )
        assert graph_of(probe).objects == []
        feed_two_objects(probe, obs_pub, launcher)
        before = {o.id: o.label for o in graph_of(probe).objects}
        seq_before = graph_of(probe).seq
        cube = next(i for i, label in before.items() if label == "red cube")

        # A service query from a separate process: JSON for scripts, a table for people.
        done = robot_memory_query("last_seen", "--object-id", str(cube), "--json")
        assert done.returncode == 0, done.stderr
        answer = MemoryAnswer.model_validate(json.loads(done.stdout))
        assert answer.ok and answer.results[0]["id"] == cube
        assert answer.results[0]["centroid"] == pytest.approx([0.1, -0.1, 0.025], abs=0.01)
        done = robot_memory_query("history", "--object-id", str(cube))
        assert done.returncode == 0 and "red cube" in done.stdout and "stamp" in done.stdout
        done = robot_memory_query("history", "--object-id", "999")
        assert done.returncode == 1 and "unknown object id 999" in done.stderr

        # A bag that loops: time goes backwards. Rejected, graph unchanged. A bad
        # query and a remote reset (not allowed here) are answered with the reason.
        obs_pub.publish(synthetic_frame(1.0, [("green sphere", (0.2, 0.0))]))
        bad = query_to_request(MemoryQuery(id="x", kind="find", text="cube"))
        bad.top_k = 1000
        response = call(probe, client, bad, check=launcher.check)
        assert not response.ok and "invalid payload" in response.error
        refused = call(probe, reset, Trigger.Request(), check=launcher.check)
        assert not refused.success and refused.message == "remote reset refused"
        spin_until(
            probe,
            lambda: (
                rejected(probe, "memory").get("time went backwards", 0) >= 1
                and rejected(probe, "memory").get("invalid payload", 0) >= 1
                and rejected(probe, "memory").get("remote reset refused", 0) >= 1
            ),
            timeout_s=15,
            check=launcher.check,
            what="rejections on /diagnostics",
        )
        assert {o.id: o.label for o in graph_of(probe).objects} == before
        assert graph_of(probe).seq == seq_before
        inside = ask(probe, client, launcher.check, kind="on", target="table")
        assert inside.ok and {r["id"] for r in inside.results} == set(before)

        os.kill(launcher.pids()["memory"], signal.SIGKILL)
        launcher.shutdown()
        probe.messages["/memory/scene_graph"].clear()
        launcher = start_memory(store, log)
        spin_until(
            probe,
            lambda: graph_of(probe) is not None,
            timeout_s=30,
            check=launcher.check,
            what="the restarted node's scene graph (transient local)",
        )
        assert {o.id: o.label for o in graph_of(probe).objects} == before
        # New objects get new ids, never a reused one.
        more = [*TWO_OBJECTS, ("green sphere", (0.25, 0.05))]
        for i in range(5):
            obs_pub.publish(synthetic_frame(12.0 + 0.1 * i, more))
            spin_for(probe, 0.1)
        spin_until(
            probe,
            lambda: len(graph_of(probe).objects) == 3,
            timeout_s=20,
            check=launcher.check,
            what="the new object",
        )
        after = {o.id: o.label for o in graph_of(probe).objects}
        new_ids = set(after) - set(before)
        assert len(new_ids) == 1 and min(new_ids) > max(before)
        assert all(after[i] == before[i] for i in before)
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
