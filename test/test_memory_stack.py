"""Perception and memory nodes as separate processes over real DDS.

* sim + perception + memory: objects reach the scene graph and a query over
  /memory/query is answered on /memory/answer;
* the memory node killed with SIGKILL restarts with the same ids;
* malformed input (bad query JSON, time going backwards) is rejected with a
  reason while the graph stays intact.
"""

from __future__ import annotations

import io
import json
import os
import signal

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String

from robot_memory.launch_spec import memory_node, stack
from robot_memory.launcher import Launcher
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.observations import (
    CameraView,
    ObjectObservation,
    ObservationFrame,
    frame_to_payload,
)
from robot_memory.schemas import GroundTruth, MemoryAnswer, SceneGraphMsg, dump_payload
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros


def graph_of(probe: Probe) -> SceneGraphMsg | None:
    msg = probe.last("/memory/scene_graph")
    return None if msg is None else SceneGraphMsg.model_validate_json(msg.data)


def answers(probe: Probe) -> dict[str, MemoryAnswer]:
    return {
        a.id: a
        for a in (
            MemoryAnswer.model_validate_json(m.data) for m in probe.messages["/memory/answer"]
        )
    }


def make_probe(name: str) -> Probe:
    probe = Probe(name)
    probe.listen(String, "/memory/scene_graph", LATCHED)
    probe.listen(String, "/memory/answer", COMMAND)
    probe.listen(DiagnosticArray, "/diagnostics", 50)
    return probe


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
    probe.listen(String, "/sim/ground_truth", COMMAND)
    query_pub = probe.create_publisher(String, "/memory/query", COMMAND)
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
        truth = GroundTruth.model_validate_json(probe.last("/sim/ground_truth").data)
        graph = graph_of(probe)
        gt_by_label = {o.label: o for o in truth.objects}
        known = [o for o in graph.objects if o.label in gt_by_label]
        assert known, f"no remembered object has a true label: {[o.label for o in graph.objects]}"
        target = known[0]
        truth_pos = np.array(gt_by_label[target.label].position)
        assert np.linalg.norm(np.array(target.centroid) - truth_pos) < 0.03

        query = {"schema_version": 1, "id": "q1", "kind": "find", "text": target.label}
        bad_kind = {"schema_version": 1, "id": "q2", "kind": "teleport"}
        for _ in range(3):  # until answered (the text model may still be loading)
            query_pub.publish(String(data=json.dumps(query)))
            query_pub.publish(String(data="{not json"))
            query_pub.publish(String(data=json.dumps(bad_kind)))
            spin_for(probe, 1.0)
            if "q1" in answers(probe) and answers(probe)["q1"].ok:
                break
        spin_until(
            probe, lambda: "q1" in answers(probe), timeout_s=60, check=launcher.check, what="q1"
        )
        found = answers(probe)["q1"]
        assert found.ok, found.error
        assert found.results[0]["id"] == target.id
        spin_until(probe, lambda: "q2" in answers(probe), 10, launcher.check, "q2 answered")
        assert not answers(probe)["q2"].ok and "invalid payload" in answers(probe)["q2"].error
        assert not answers(probe)[""].ok  # unreadable JSON: answered without an id
        spin_until(
            probe,
            lambda: rejected(probe, "memory").get("malformed json", 0) >= 1,
            timeout_s=10,
            what="malformed json counted on /diagnostics",
        )
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()


# -- the memory node alone: SIGKILL, restart, bad input ------------------------------------
LOOK_DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # optical z along -world z


def synthetic_frame(stamp: float, objects: list[tuple[str, tuple[float, float]]]) -> str:
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
    return dump_payload(frame_to_payload(ObservationFrame(view, observed)))


TWO_OBJECTS = [("red cube", (0.1, -0.1)), ("blue cylinder", (0.0, 0.15))]


def feed_two_objects(probe: Probe, obs_pub, launcher) -> None:
    """Ten synthetic frames of a red cube and a blue cylinder, until memory's
    graph has both."""
    for i in range(10):
        obs_pub.publish(String(data=synthetic_frame(10.0 + 0.1 * i, TWO_OBJECTS)))
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


def test_memory_node_survives_sigkill_with_ids_and_rejects_bad_input(tmp_path):
    store = tmp_path / "memory.sqlite"
    log = io.StringIO()
    rclpy.init()
    probe = make_probe("memory_kill_probe")
    obs_pub = probe.create_publisher(String, "/perception/observations", 50)
    query_pub = probe.create_publisher(String, "/memory/query", COMMAND)
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

        # A bag that loops: time goes backwards. Rejected, graph unchanged.
        obs_pub.publish(String(data=synthetic_frame(1.0, [("green sphere", (0.2, 0.0))])))
        query_pub.publish(String(data="[1, 2"))
        spin_until(
            probe,
            lambda: (
                rejected(probe, "memory").get("time went backwards", 0) >= 1
                and rejected(probe, "memory").get("malformed json", 0) >= 1
            ),
            timeout_s=15,
            check=launcher.check,
            what="rejections on /diagnostics",
        )
        assert {o.id: o.label for o in graph_of(probe).objects} == before
        assert graph_of(probe).seq == seq_before

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
            obs_pub.publish(String(data=synthetic_frame(12.0 + 0.1 * i, more)))
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
