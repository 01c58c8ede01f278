"""End to end on the typed stack: the sim, perception and memory nodes over real
DDS, recorded by `robot-memory record`; the bag carries the typed topics with
their definitions, `robot-memory eval` scores it (ground truth typed, camera
poses from /tf) and `robot-memory replay` publishes the typed topics again."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from robot_memory_interfaces.msg import GroundTruth, ObservationFrame, SceneGraph
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from tf2_msgs.msg import TFMessage

from robot_memory.apps.record_cli import record
from robot_memory.bag.reader import bag_summary
from robot_memory.bringup.launch_spec import stack
from robot_memory.bringup.launcher import Launcher
from robot_memory.cli import main as cli_main
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.replay.bag_frames import CameraFrameEvent, iter_bag_events
from ros_helpers import Probe, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CAMERA_TOPICS = [
    f"/camera/{cam}/{kind}"
    for cam in ("front", "wrist")
    for kind in ("color/image_raw", "color/camera_info", "aligned_depth_to_color/image_raw")
]
TYPED = {
    "/sim/ground_truth": "robot_memory_interfaces/msg/GroundTruth",
    "/perception/observations": "robot_memory_interfaces/msg/ObservationFrame",
    "/memory/scene_graph": "robot_memory_interfaces/msg/SceneGraph",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
}
TOPICS = ["/clock", "/joint_states", *CAMERA_TOPICS, *TYPED]
FRAMES = 12  # front camera frames to record (5 Hz of sim time)


def recorder_written(probe: Probe, topic: str) -> int:
    """How many ``topic`` messages the recorder says it wrote (its /diagnostics)."""
    written = 0
    for msg in probe.messages["/diagnostics"]:
        for status in msg.status:
            if status.name.endswith(": recorder"):
                for kv in status.values:
                    if kv.key == f"{topic}.written":
                        written = int(kv.value)
    return written


@pytest.fixture(scope="module")
def typed_bag(tmp_path_factory):
    """Sim (5 Hz cameras) + perception + memory, recorded until memory has
    published a scene graph with objects and FRAMES front frames went by."""
    out = tmp_path_factory.mktemp("typed_stack")
    overrides = {
        "sim": {"camera_rate": 5.0},
        "memory": {"store_path": str(out / "memory.sqlite"), "reset_on_start": True},
    }
    specs = [s for s in stack("sim", overrides) if s.name in ("sim", "perception", "memory")]
    bag, log = out / "bag", io.StringIO()
    stop, result = threading.Event(), {}
    rclpy.init()
    probe = Probe("typed_stack_probe")
    probe.listen(SceneGraph, "/memory/scene_graph", LATCHED)
    probe.listen(ObservationFrame, "/perception/observations", COMMAND)
    probe.listen(DiagnosticArray, "/diagnostics", 10)
    launcher = Launcher(specs, output=log)
    launcher.start()
    recorder = threading.Thread(
        target=lambda: result.update(
            summary=record(bag, TOPICS, duration_s=300, stop_event=stop, progress=False,
                           use_sim_time=True)
        )
    )  # fmt: skip
    try:
        recorder.start()

        def recorder_subscribed() -> bool:  # its own /diagnostics: every topic subscribed
            for msg in probe.messages["/diagnostics"]:
                for status in msg.status:
                    values = {kv.key: kv.value for kv in status.values}
                    if status.name.endswith(": recorder") and values.get("topics") == str(
                        len(TOPICS)
                    ):
                        return True
            return False

        spin_until(probe, recorder_subscribed, 120, launcher.check, "the recorder")
        seen = len(probe.messages["/perception/observations"])
        spin_until(
            probe,
            lambda: (
                len(probe.messages["/perception/observations"]) >= seen + FRAMES
                and any(g.objects for g in probe.messages["/memory/scene_graph"])
            ),
            timeout_s=240,
            check=launcher.check,
            what="observations and a scene graph with objects",
        )
        # the recorder has its own subscription and reports at 1 Hz: on a loaded
        # machine it may not have the graph yet; memory publishes one per update,
        # and two written after this point came after a graph with objects
        graphs = recorder_written(probe, "/memory/scene_graph")
        front = [t for t in CAMERA_TOPICS if t.startswith("/camera/front/")]
        spin_until(
            probe,
            lambda: (
                recorder_written(probe, "/memory/scene_graph") >= graphs + 2
                # and the front camera's frames (best effort: a loaded recorder loses some)
                and all(recorder_written(probe, t) >= FRAMES for t in front)
            ),
            timeout_s=120,
            check=launcher.check,
            what=f"the recorder writing a scene graph with objects and {FRAMES} front frames",
        )
    finally:
        stop.set()
        recorder.join(60)
        launcher.shutdown()
        probe.destroy_node()
        rclpy.shutdown()
    summary = result["summary"]
    assert not summary.missing and summary.dropped == 0, str(summary)
    return bag


def test_the_bag_carries_the_typed_topics_decodable_from_its_own_definitions(typed_bag):
    types = {t: i.msgtype for t, i in bag_summary(typed_bag).topics.items()}
    assert {t: types.get(t) for t in TYPED} == TYPED
    assert not any(t.endswith("/pose") for t in types)
    with AnyReader([typed_bag], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        last = {}
        conns = [c for c in reader.connections if c.topic in TYPED]
        for conn, _, raw in reader.messages(conns):
            last[conn.topic] = reader.deserialize(raw, conn.msgtype)
    assert last["/sim/ground_truth"].objects and last["/memory/scene_graph"].objects
    frames = {t.child_frame_id for t in last["/tf_static"].transforms}
    assert {"panda_link0", "front_color_optical_frame", "wrist_color_optical_frame"} <= frames
    observed = last["/perception/observations"]  # objects in the world frame
    assert observed.header.frame_id == "world" and observed.camera in ("front", "wrist")


def test_eval_scores_the_typed_bag_with_poses_from_tf(typed_bag, tmp_path):
    out = tmp_path / "eval"
    assert cli_main(["eval", str(typed_bag), "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    meta, s = report["meta"], report["summary"]
    assert meta["frames"].get("front", 0) >= FRAMES // 2, meta
    # Every frame of a camera has its pose from /tf, but for any the recorder
    # took before it had subscribed to /tf (the recorder subscribes topics as it
    # discovers them): the front camera's pose is static, the wrist's needs the
    # arm's /tf, which may start later than the wrist images.
    # ... and for the last ones, whose /tf the recorder had not received when it
    # stopped (/tf is sent first, but on a subscription of its own).
    with AnyReader([typed_bag], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        conns = [c for c in reader.connections if c.topic == "/tf"]
        last_tf = max(
            s.sec + s.nanosec * 1e-9
            for conn, _, raw in reader.messages(conns)
            for s in [reader.deserialize(raw, conn.msgtype).transforms[0].header.stamp]
        )
    frames = [e for e in iter_bag_events(typed_bag) if isinstance(e, CameraFrameEvent)]
    for cam in ("front", "wrist"):
        covered = [f for f in frames if f.camera == cam and f.stamp <= last_tf]
        posed = [f.pose_source == "tf" for f in covered]
        assert any(posed), (cam, [f.missing for f in covered][:5])
        after = covered[posed.index(True) :]
        unposed = [(f.stamp, f.missing) for f in after if f.pose_source != "tf"]
        assert not unposed, (cam, f"of {len(covered)}", unposed[:5])
    assert s["f1_final"] is not None and s["f1_final"] >= 0.5, s
    print(f"typed bag eval: frames {meta['frames']}, f1 {s['f1_final']:.3f}, "
          f"loc {s.get('loc_error_mean')}")  # fmt: skip


def test_replay_publishes_the_typed_topics(typed_bag):
    counts = {t: i.count for t, i in bag_summary(typed_bag).topics.items()}
    rclpy.init()
    probe = Probe("typed_replay_probe")
    probe.listen(GroundTruth, "/sim/ground_truth", COMMAND)
    probe.listen(TFMessage, "/tf_static", LATCHED)
    probe.listen(SceneGraph, "/memory/scene_graph", LATCHED)
    cmd = [sys.executable, "-m", "robot_memory.apps.replay_cli", str(typed_bag), "--fast",
           "--no-progress", "--wait-for-subscribers", "30"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        spin_until(probe, lambda: proc.poll() is not None, 120, what="replay end")
        spin_until(
            probe,
            lambda: len(probe.messages["/sim/ground_truth"]) >= counts["/sim/ground_truth"],
            10,
            what="the last ground truth",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.destroy_node()
        rclpy.shutdown()
    output = proc.stdout.read()
    assert proc.returncode == 0, output
    line = next(ln for ln in output.splitlines() if ln.startswith("replay summary: "))
    summary = json.loads(line.removeprefix("replay summary: "))
    assert summary["skipped"] == {}, summary
    assert all(summary["counts"][t] == counts[t] for t in TYPED), summary
    assert probe.messages["/tf_static"] and probe.messages["/memory/scene_graph"][-1].objects
