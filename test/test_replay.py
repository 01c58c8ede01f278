"""Synchronized frames from bags (MCAP and sqlite3), the replay timing core, and
the replay node over real DDS against a subscriber in this process."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from robot_memory_interfaces.msg import GroundTruth
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from robot_memory.apps.scenario_scripts import look_at
from robot_memory.apps.scenarios import ScenarioConfig, ScenarioSession
from robot_memory.bag.reader import bag_summary, iter_messages
from robot_memory.bag.writer import BagWriter, make_qos
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.perception.image_messages import decode_color, decode_depth
from robot_memory.replay.bag_frames import CameraFrameEvent, GroundTruthEvent, iter_bag_events
from robot_memory.replay.replay_core import PauseClock, RateCap, ReplaySchedule, ReplayTiming
from ros_helpers import Probe, spin_until

W, H = 160, 120


def short_bag(path, storage: str, hold_s: float = 0.3):
    """A short scenario bag from the sim: a look at one spot of the table."""
    config = ScenarioConfig(width=W, height=H, camera_rate=5.0, storage=storage, small=True)
    session = ScenarioSession(path, config)
    try:
        session.run_for(0.3)
        look_at(session, (0.08, -0.2), hold_s=hold_s)
    finally:
        session.close()
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    return {s: short_bag(out / s, s) for s in ("mcap", "sqlite3")}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_frames_are_synchronized_for_both_cameras(bags, storage):
    events = list(iter_bag_events(bags[storage]))
    frames = [e for e in events if isinstance(e, CameraFrameEvent)]
    truths = [e for e in events if isinstance(e, GroundTruthEvent)]
    counts = bag_summary(bags[storage]).topics
    for cam in ("front", "wrist"):
        mine = [f for f in frames if f.camera == cam]
        assert len(mine) == counts[f"/camera/{cam}/color/image_raw"].count >= 5
        for f in mine:
            assert f.complete, f.missing
            assert f.stamp == f.depth_stamp == f.pose_stamp and f.pose_source == "tf"
            assert f.rgb.shape == (H, W, 3) and f.rgb.dtype == np.uint8
            assert f.depth.shape == (H, W) and f.depth.dtype == np.float32
            assert 0.2 < float(np.median(f.depth[f.depth > 0])) < 3.0
            assert f.intrinsics[0, 2] == pytest.approx((W - 1) / 2)
            np.testing.assert_allclose(f.intrinsics, mine[0].intrinsics)
            assert abs(np.linalg.norm(f.quaternion) - 1) < 1e-6
            assert len(f.joint_positions) == 9
        poses = np.array([f.position for f in mine])
        moved = np.ptp(poses, axis=0).max()
        assert (moved > 0.05) if cam == "wrist" else (moved < 1e-9)
    stamps = [e.stamp for e in events]
    assert stamps == sorted(stamps) and truths
    assert len(iter_bag_list := list(iter_bag_events(bags[storage], cameras=["front"]))) > 0
    assert {e.camera for e in iter_bag_list if isinstance(e, CameraFrameEvent)} == {"front"}


def test_frames_without_camera_info_or_pose_are_yielded_with_a_reason(bags, tmp_path):
    partial = tmp_path / "partial"
    with BagWriter(partial, "mcap") as bag:
        for topic in (
            "/camera/front/color/image_raw",
            "/camera/front/aligned_depth_to_color/image_raw",
        ):
            bag.add_topic(topic, "sensor_msgs/msg/Image", make_qos(reliable=False, depth=5))
        for topic, _, ns, raw in iter_messages(bags["mcap"], [*bag.topics]):
            bag.write(topic, raw, ns)
    frames = list(iter_bag_events(partial))
    assert frames and all(isinstance(f, CameraFrameEvent) for f in frames)
    assert all("no camera_info" in f.missing and "no pose" in f.missing for f in frames)
    assert all(f.depth is not None for f in frames)
    with pytest.raises(ValueError, match="wrist"):
        list(iter_bag_events(partial, cameras=["wrist"]))


def test_colour_and_depth_encodings_decode():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = conv.rgb_image(rgb, 1.0, "f")
    np.testing.assert_array_equal(decode_color(msg), rgb)
    bgra = np.concatenate([rgb[..., ::-1], np.full((2, 3, 1), 255, np.uint8)], axis=2)
    raw = SimpleNamespace(encoding="bgra8", height=2, width=3, step=12, data=bgra.tobytes())
    np.testing.assert_array_equal(decode_color(raw), rgb)
    depth = np.array([[0.5, 0.0, 1.25]], dtype=np.float32)
    for enc in ("16UC1", "32FC1"):
        np.testing.assert_allclose(decode_depth(conv.depth_image(depth, 0.0, "f", enc)), depth)
    with pytest.raises(ValueError):
        decode_color(SimpleNamespace(encoding="yuv422", height=1, width=1, step=2, data=b"ab"))


def test_schedule_rates_clock_ticks_and_loop():
    start, end = 1_000_000_000, 3_000_000_000
    s1 = ReplaySchedule(start, end, ReplayTiming(rate=1.0, clock_rate=50))
    s4 = ReplaySchedule(start, end, ReplayTiming(rate=4.0, clock_rate=50))
    fast = ReplaySchedule(start, end, ReplayTiming(fast=True, clock_rate=50))
    assert s1.due_s(2_000_000_000) == pytest.approx(1.0)
    assert s4.due_s(2_000_000_000) == pytest.approx(0.25)
    assert s4.pass_wall_s == pytest.approx(s1.pass_wall_s / 4)
    assert fast.due_s(2_000_000_000) is None and fast.pass_wall_s is None
    assert len(s1.clock_ticks()) == len(s4.clock_ticks()) == 101
    assert s1.due_s(start, pass_index=1) == pytest.approx(2.02)  # after the pass and one tick
    msgs = [("/a", "std_msgs/msg/String", start + 5_000_000, b"x"), ("/clock", "c", start, b"y")]
    items = list(s1.items(sorted(msgs, key=lambda m: m[2]), pass_index=0))
    assert [i.topic for i in items[:2]] == ["/clock", "/a"] and items[0].is_clock
    assert sum(i.topic == "/clock" for i in items) == 101  # the bag's own /clock dropped
    assert [i.bag_ns for i in items] == sorted(i.bag_ns for i in items)
    cap = RateCap(10.0)
    assert [cap.next_due(0.0), cap.next_due(0.0), cap.next_due(0.5)] == [0.0, 0.1, 0.5]
    pause = PauseClock(10.0)
    pause.pause(11.0)
    assert pause.elapsed(15.0) == 1.0
    pause.resume(15.0)
    assert pause.elapsed(16.0) == 2.0
    with pytest.raises(ValueError):
        ReplayTiming(rate=0.0)


def _replay(bag, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "robot_memory.apps.replay_cli", str(bag), "--no-progress"]
    return subprocess.Popen(
        [*cmd, "--wait-for-subscribers", "30", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _summary(output: str) -> dict:
    line = next(ln for ln in output.splitlines() if ln.startswith("replay summary: "))
    return json.loads(line.removeprefix("replay summary: "))


DEEP_SENSOR = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)


def _listen() -> Probe:
    probe = Probe("replay_probe")
    # deep reader queues: a probe on a loaded machine must not drop what arrived
    probe.listen(Image, "/camera/front/color/image_raw", DEEP_SENSOR)
    probe.listen(Clock, "/clock", 1000)
    probe.listen(GroundTruth, "/sim/ground_truth", COMMAND)
    probe.listen(TFMessage, "/tf_static", LATCHED)
    return probe


def test_replay_node_publishes_the_bag_at_rate_and_follows_bag_time(bags):
    bag = bags["mcap"]
    counts = bag_summary(bag).topics
    n_images = counts["/camera/front/color/image_raw"].count
    rclpy.init()
    try:
        results = {}
        for rate in ("4", "1"):
            probe = _listen()
            proc = _replay(bag, "--rate", rate, "--clock-rate", "50")
            try:
                spin_until(probe, lambda p=proc: p.poll() is not None, 60, what="replay end")
                spin_until(probe, lambda: True, 1)
            finally:
                proc.kill() if proc.poll() is None else None
            out = proc.stdout.read()
            assert proc.returncode == 0, out
            results[rate] = (_summary(out), probe.messages)
            probe.destroy_node()
    finally:
        rclpy.shutdown()
    (s4, m4), (s1, m1) = results["4"], results["1"]
    assert s4["counts"] == s1["counts"] and s4["stopped_by"] == "end"
    assert s4["planned_pass_wall_s"] == pytest.approx(s1["planned_pass_wall_s"] / 4)
    for msgs in (m4, m1):
        clock = [conv.from_time(c.clock) for c in msgs["/clock"]]
        assert len(clock) >= 0.9 * s4["counts"]["/clock"]
        assert clock == sorted(clock)
        stamps = [conv.from_time(i.header.stamp) for i in msgs["/camera/front/color/image_raw"]]
        assert len(stamps) >= 0.8 * n_images and stamps == sorted(stamps)
        # each image arrives after /clock reached its stamp (the clock is never behind)
        assert stamps[-1] <= clock[-1] + 1e-9
        assert len(msgs["/sim/ground_truth"]) == counts["/sim/ground_truth"].count
        assert msgs["/sim/ground_truth"][-1].objects  # typed, replayed as recorded
        frames = {t.child_frame_id for m in msgs["/tf_static"] for t in m.transforms}
        assert {"panda_link0", "front_color_optical_frame", "wrist_color_optical_frame"} <= frames


def test_replay_loops_with_time_jumping_back_and_stops_cleanly_on_sigterm(bags):
    rclpy.init()
    probe = _listen()
    proc = _replay(bags["sqlite3"], "--fast", "--loop", "--max-image-rate", "40")
    try:

        def jumped() -> bool:
            clock = [conv.from_time(c.clock) for c in probe.messages["/clock"]]
            return any(b < a for a, b in itertools.pairwise(clock))

        spin_until(probe, jumped, 60, what="/clock to jump back on loop")
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.destroy_node()
        rclpy.shutdown()
    out = proc.stdout.read()
    assert proc.returncode == 0, out
    summary = _summary(out)
    assert summary["stopped_by"] == "interrupt" and summary["passes"] >= 1
    assert summary["backward_jumps"] >= 1 and summary["fast"]


def test_recorder_bags_with_wall_clock_log_times_keep_ground_truth_in_order(bags, tmp_path):
    """The project's recorder logs receive (wall) time while headers carry sim
    time: ground truth must still fall between the frames of its instant."""
    shifted = tmp_path / "recorded"
    offset_ns = 1_795_000_000 * 10**9
    with BagWriter(shifted, "mcap") as bag:
        for topic, msgtype, ns, raw in iter_messages(bags["mcap"]):
            if topic not in bag.topics:
                bag.add_topic(topic, msgtype, make_qos())
            bag.write(topic, raw, ns + offset_ns)
    events = list(iter_bag_events(shifted))
    truths = [e for e in events if isinstance(e, GroundTruthEvent)]
    assert truths and all(e.truth is not None and e.stamp == e.truth.stamp for e in truths)
    stamps = [e.stamp for e in events]
    assert stamps == sorted(stamps)
    kinds = [isinstance(e, GroundTruthEvent) for e in events]
    assert kinds.index(True) < len(kinds) - kinds[::-1].index(False) - 1  # interleaved
