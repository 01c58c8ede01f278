"""The bag recorder: BagWriter/reader round trip (ROS-free), and the recorder
node over real DDS against a publisher in a separate process."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image

from robot_memory.apps.record_cli import record
from robot_memory.bag.queued_writer import QueuedWriter
from robot_memory.bag.reader import bag_summary, iter_messages
from robot_memory.bag.writer import BagWriter, UnknownMessageTypeError, make_qos
from robot_memory.nodes.topic_tools import choose_qos, import_message_class, qos_to_bag
from ros_helpers import TIMEOUT_SCALE

IMAGE = "/test/camera/color/image_raw"
LATCHED = "/test/memory/scene_graph"
JOINTS = "/test/joint_states"
TRUTH = "/test/sim/ground_truth"
TF_STATIC = "/test/tf_static"
ABSENT = "/test/does_not_exist"
WIDTH, HEIGHT = 64, 48
SIM_START_S = 1000

PUBLISHER = textwrap.dedent(
    f"""
    from robot_memory.bringup.ros_env import apply_to_current_process
    apply_to_current_process()
    import numpy as np, rclpy
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from geometry_msgs.msg import TransformStamped
    from robot_memory_interfaces.msg import (
        GroundTruth, GroundTruthObject, MemoryObject, SceneGraph
    )
    from tf2_msgs.msg import TFMessage
    from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR

    rclpy.init()
    node = Node("recorder_test_publisher")
    img_pub = node.create_publisher(Image, "{IMAGE}", SENSOR)
    js_pub = node.create_publisher(JointState, "{JOINTS}", COMMAND)
    latched_pub = node.create_publisher(SceneGraph, "{LATCHED}", LATCHED)
    static_pub = node.create_publisher(TFMessage, "{TF_STATIC}", LATCHED)
    truth_pub = node.create_publisher(GroundTruth, "{TRUTH}", COMMAND)
    clock_pub = node.create_publisher(Clock, "/clock", 10)
    graph = SceneGraph(seq=1)
    graph.header.frame_id = "world"
    remembered = MemoryObject.REMEMBERED
    graph.objects = [MemoryObject(id=7, label="red cube", status=remembered, yaw=[0.5])]
    graph.objects[0].centroid.x = 0.25
    latched_pub.publish(graph)
    mount = TransformStamped(child_frame_id="front_color_optical_frame")
    mount.header.frame_id = "world"
    mount.transform.translation.z = 1.2
    mount.transform.rotation.w = 1.0
    static_pub.publish(TFMessage(transforms=[mount]))
    ys, xs = np.mgrid[0:{HEIGHT}, 0:{WIDTH}]
    seq = [0]

    def tick():
        seq[0] += 1
        clock = Clock()
        clock.clock.sec = {SIM_START_S} + seq[0] // 20
        clock.clock.nanosec = seq[0] % 20 * 50_000_000
        clock_pub.publish(clock)
        pixels = np.stack([xs * 4, ys * 5, np.full_like(xs, seq[0] % 256)], -1).astype(np.uint8)
        img = Image(height={HEIGHT}, width={WIDTH}, encoding="rgb8", step={WIDTH} * 3)
        img.header.stamp = node.get_clock().now().to_msg()
        img.header.frame_id = str(seq[0] % 256)
        img.data = pixels.tobytes()
        img_pub.publish(img)
        js_pub.publish(JointState(name=["j1", "j2"], position=[0.1 * seq[0], -1.0]))
        truth = GroundTruth(seed=seq[0], scene="tabletop")
        cube = GroundTruthObject(id="red_cube", kind="object", label="red cube", grasped=True)
        cube.pose.position.y = -0.5
        cube.pose.orientation.w = 1.0
        truth.objects = [cube]
        truth_pub.publish(truth)

    node.create_timer(0.05, tick)
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except Exception:
        pass
    """
)


# -- ROS-free: BagWriter and reader ---------------------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_writer_reader_round_trip(tmp_path: Path, storage: str):
    store = get_typestore(Stores.ROS2_KILTED)
    String = store.types["std_msgs/msg/String"]
    BagImage = store.types["sensor_msgs/msg/Image"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    pixels = np.arange(4 * 3 * 3, dtype=np.uint8)
    img = BagImage(
        header=Header(stamp=Time(sec=5, nanosec=6), frame_id="cam"),
        height=3,
        width=4,
        encoding="rgb8",
        is_bigendian=0,
        step=12,
        data=pixels,
    )
    bag = tmp_path / "bag"
    with BagWriter(bag, storage) as writer:
        writer.add_topic("/chatter", "std_msgs/msg/String", make_qos(transient_local=True))
        handle = writer.add_topic("/image", "sensor_msgs/Image", make_qos(reliable=False))
        assert handle.msgtype == "sensor_msgs/msg/Image"
        for i in range(3):
            raw = store.serialize_cdr(String(data=f"hello {i}"), "std_msgs/msg/String")
            writer.write("/chatter", raw, 1_000 + i)
        writer.write(handle, store.serialize_cdr(img, "sensor_msgs/msg/Image"), 2_000)
        assert writer.counts == {"/chatter": 3, "/image": 1}

    summary = bag_summary(bag)
    assert summary.storage == storage
    assert summary.message_count == 4
    assert summary.topics["/chatter"].count == 3
    assert summary.topics["/image"].msgtype == "sensor_msgs/msg/Image"

    messages = list(iter_messages(bag))
    assert [m[2] for m in messages] == [1_000, 1_001, 1_002, 2_000]
    assert all(isinstance(m[3], bytes) for m in messages)
    assert store.deserialize_cdr(messages[1][3], "std_msgs/msg/String").data == "hello 1"
    (_, msgtype, _, raw), *_ = iter_messages(bag, ["/image"])
    back = store.deserialize_cdr(raw, msgtype)
    assert back.encoding == "rgb8" and back.header.frame_id == "cam"
    np.testing.assert_array_equal(back.data, pixels)
    with pytest.raises(ValueError, match="not in bag"):
        list(iter_messages(bag, ["/nope"]))
    # The definitions travel inside the bag: AnyReader needs no type store.
    with AnyReader([bag]) as reader:
        assert {c.topic: c.msgtype for c in reader.connections}["/chatter"] == "std_msgs/msg/String"


def test_bag_writer_errors(tmp_path: Path):
    existing = tmp_path / "exists"
    existing.mkdir()
    with pytest.raises(FileExistsError, match="never overwritten"):
        BagWriter(existing)
    with pytest.raises(ValueError, match="storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")
    with BagWriter(tmp_path / "bag") as writer:
        with pytest.raises(UnknownMessageTypeError, match="not in the rosbags type store"):
            writer.add_topic("/x", "no_such_msgs/msg/Thing")
        assert not writer.has_type("no_such_msgs/msg/Thing")


def test_bag_writer_loads_msg_files_for_unknown_types(tmp_path: Path):
    share = tmp_path / "share" / "my_msgs" / "msg"
    share.mkdir(parents=True)
    (share / "Pair.msg").write_text("std_msgs/Header header\nItem[] items\n")
    (share / "Item.msg").write_text("uint8 KIND_A=1\nuint8 kind\nfloat64 value\n")
    with BagWriter(tmp_path / "bag", msg_search_paths=[tmp_path / "share"]) as writer:
        writer.add_topic("/pairs", "my_msgs/msg/Pair")
        store = writer.typestore
        Pair, Item = store.types["my_msgs/msg/Pair"], store.types["my_msgs/msg/Item"]
        header = store.types["std_msgs/msg/Header"](
            stamp=store.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id=""
        )
        raw = store.serialize_cdr(
            Pair(header=header, items=[Item(kind=1, value=2.5)]), Pair.__msgtype__
        )
        writer.write("/pairs", raw, 10)
    with AnyReader([tmp_path / "bag"]) as reader:
        (conn, _, raw), *_ = reader.messages()
        assert reader.deserialize(raw, conn.msgtype).items[0].value == 2.5


class _SlowWriter:
    """Stands in for BagWriter: blocks until released, fails on topic "/bad"."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.busy = threading.Event()
        self.written: list[tuple[str, int]] = []

    def write(self, topic: str, rawdata: bytes, timestamp_ns: int) -> None:
        self.busy.set()
        self.release.wait(5)
        if topic == "/bad":
            raise OSError("disk full")
        self.written.append((topic, timestamp_ns))


def test_queued_writer_drops_when_full_and_counts_failures():
    slow = _SlowWriter()
    errors: list[str] = []
    queue = QueuedWriter(slow, max_queue_bytes=250, on_error=lambda t, e: errors.append(str(e)))
    assert queue.put("/ok", bytes(100), 0)
    assert slow.busy.wait(5)  # the writer thread holds message 0; the queue is empty
    assert [queue.put("/ok", bytes(100), i) for i in (1, 2, 3)] == [True, True, False]
    assert queue.dropped == 1 and queue.queued_bytes == 200
    assert queue.put("/bad", b"x", 99)
    slow.release.set()
    assert queue.stop(timeout_s=5)
    assert slow.written == [("/ok", 0), ("/ok", 1), ("/ok", 2)]
    assert queue.failed == 1 and errors == ["disk full"]
    assert not queue.put("/ok", b"late", 100)


def test_message_classes_of_actions_parts_import():
    """What an action's hidden topics carry (recorded when asked for by name)."""
    feedback = import_message_class("robot_memory_interfaces/action/RunSkill_FeedbackMessage")
    assert feedback.__name__ == "RunSkill_FeedbackMessage"
    assert import_message_class("robot_memory_interfaces/msg/SceneGraph").__name__ == "SceneGraph"
    with pytest.raises(AttributeError):
        import_message_class("robot_memory_interfaces/action/RunSkill_Nothing")


def test_choose_qos_matches_publishers():
    best_effort = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    volatile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    assert choose_qos([best_effort]).reliability == ReliabilityPolicy.BEST_EFFORT
    assert choose_qos([latched, volatile]).reliability == ReliabilityPolicy.RELIABLE
    assert choose_qos([latched, best_effort]).reliability == ReliabilityPolicy.BEST_EFFORT
    assert choose_qos([latched]).durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert choose_qos([latched, volatile]).durability == DurabilityPolicy.VOLATILE
    assert qos_to_bag(latched).durability.name == "TRANSIENT_LOCAL"


# -- the recorder node over DDS -------------------------------------------------------------


@pytest.fixture(scope="module")
def publisher():
    """Image (sensor QoS), JointState and GroundTruth (reliable), a latched SceneGraph
    and a latched TFMessage (published once, before any recorder starts), published
    from a separate process on this test session's ROS_DOMAIN_ID."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "ready", f"publisher failed: {line}{proc.stdout.read()}"
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record_until_seen(bag: Path, topics: list[str] | None, want: dict[str, int], **kwargs):
    """``record()`` until the recorder's own /diagnostics say it has received
    ``want[topic]`` messages a second on each topic (at least one for a rate of
    0), and two more of its statuses came after that (so a status with those
    rates is in the bag when /diagnostics is recorded); at most 60 s: events,
    not a duration tuned to a quiet machine (under load, discovering the
    publisher took longer than a fixed 2.5 s)."""
    stop = threading.Event()
    out: dict = {}
    worker = threading.Thread(
        target=lambda: out.update(
            summary=record(bag, topics, duration_s=60.0, stop_event=stop, **kwargs)
        )
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        watcher = rclpy.create_node("record_watcher", context=context)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(watcher)
        seen: dict[str, str] = {}
        statuses = [0]  # recorder statuses since the wanted rates were reached

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name.endswith(": recorder"):
                    seen.clear()
                    seen.update({kv.key: kv.value for kv in status.values})
                    statuses[0] += 1

        watcher.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        worker.start()
        deadline = time.monotonic() + 60.0 * TIMEOUT_SCALE
        reached = False
        while worker.is_alive() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if not reached and all(
                float(seen.get(f"{t}.rate_hz", -1)) >= rate for t, rate in want.items()
            ):
                reached, statuses[0] = True, 0
            if reached and statuses[0] >= 2:  # one more status made it into the bag
                break
        stop.set()
        worker.join()
        watcher.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    return out["summary"]


def _check_typed(bag: Path) -> None:
    """Decode the custom types with a plain rosbags reader and ONLY the
    definitions the bag carries (an empty default type store): what Foxglove
    or a machine without robot_memory_interfaces sees."""
    with AnyReader([bag], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        conns = {c.topic: c for c in reader.connections}
        for topic in (LATCHED, TRUTH, TF_STATIC):
            assert conns[topic].msgdef.format == MessageDefinitionFormat.MSG  # ros2msg
        assert "MSG: robot_memory_interfaces/MemoryObject" in conns[LATCHED].msgdef.data
        first = {}
        for conn, _, raw in reader.messages([conns[LATCHED], conns[TRUTH], conns[TF_STATIC]]):
            first.setdefault(conn.topic, reader.deserialize(raw, conn.msgtype))
    graph, truth, static = first[LATCHED], first[TRUTH], first[TF_STATIC]
    assert graph.seq == 1 and graph.header.frame_id == "world"
    (obj,) = graph.objects
    assert (obj.id, obj.label, obj.status, list(obj.yaw)) == (7, "red cube", 1, [0.5])
    assert obj.centroid.x == 0.25
    assert truth.scene == "tabletop" and truth.seed >= 1
    (cube,) = truth.objects
    assert (cube.id, cube.label, cube.grasped, cube.pose.position.y) == (
        "red_cube",
        "red cube",
        True,
        -0.5,
    )
    (mount,) = static.transforms
    assert mount.child_frame_id == "front_color_optical_frame"
    assert mount.transform.translation.z == 1.2


def _check_images(bag: Path) -> int:
    count = 0
    for topic, msgtype, _, raw in iter_messages(bag, [IMAGE]):
        assert (topic, msgtype) == (IMAGE, "sensor_msgs/msg/Image")
        img = deserialize_message(raw, Image)
        assert (img.encoding, img.width, img.height, img.step) == ("rgb8", WIDTH, HEIGHT, WIDTH * 3)
        pixels = np.frombuffer(bytes(img.data), np.uint8).reshape(HEIGHT, WIDTH, 3)
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        np.testing.assert_array_equal(pixels[..., 0], xs * 4)
        np.testing.assert_array_equal(pixels[..., 1], ys * 5)
        assert (pixels[..., 2] == int(img.header.frame_id)).all()
        count += 1
    return count


@pytest.mark.ros
def test_record_mcap(publisher, tmp_path: Path):
    bag = tmp_path / "bag"
    want = {IMAGE: 5, LATCHED: 0, JOINTS: 5, TRUTH: 5, TF_STATIC: 0}
    topics = [IMAGE, LATCHED, JOINTS, TRUTH, TF_STATIC, ABSENT]
    summary = record_until_seen(bag, topics, want, progress=False)
    assert summary.stopped_by == "stop_event"
    assert summary.missing == {ABSENT: "never appeared"}
    assert summary.dropped == 0 and summary.failed == 0
    assert summary.types == {
        IMAGE: "sensor_msgs/msg/Image",
        LATCHED: "robot_memory_interfaces/msg/SceneGraph",
        JOINTS: "sensor_msgs/msg/JointState",
        TRUTH: "robot_memory_interfaces/msg/GroundTruth",
        TF_STATIC: "tf2_msgs/msg/TFMessage",
    }
    assert ABSENT in str(summary)

    with AnyReader([bag]) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == summary.types
        counts = {t: info.msgcount for t, info in reader.topics.items()}
        assert counts == summary.counts
        assert counts[IMAGE] > 5 and counts[JOINTS] > 5
        # The latched topics were published before the recorder started.
        assert counts[LATCHED] == counts[TF_STATIC] == 1
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
        assert qos[IMAGE].reliability.name == "BEST_EFFORT"
        assert qos[LATCHED].durability.name == "TRANSIENT_LOCAL"
    assert _check_images(bag) == counts[IMAGE]
    _check_typed(bag)


@pytest.mark.ros
def test_record_all_topics_sqlite3(publisher, tmp_path: Path):
    bag = tmp_path / "bag"
    # /diagnostics: its own status is in the bag (read below)
    want = {IMAGE: 5, LATCHED: 0, JOINTS: 5, TRUTH: 5, TF_STATIC: 0}
    want |= {"/clock": 5, "/diagnostics": 0}
    summary = record_until_seen(bag, None, want, storage="sqlite3", use_sim_time=True)
    assert summary.missing == {}
    info = bag_summary(bag)
    assert info.storage == "sqlite3"
    for topic in (IMAGE, LATCHED, JOINTS, TRUTH, TF_STATIC, "/clock", "/diagnostics"):
        assert info.topics[topic].count > 0, topic
    _check_typed(bag)  # from the bag's message_definitions table
    with sqlite3.connect(next(bag.glob("*.db3"))) as db:
        rows = dict(db.execute("SELECT topic_type, encoding FROM message_definitions"))
    assert rows["robot_memory_interfaces/msg/GroundTruth"] == "ros2msg"
    # Stamped with /clock time, including what arrived before the first /clock.
    assert SIM_START_S * 10**9 <= info.start_ns <= info.end_ns < (SIM_START_S + 3600) * 10**9
    assert _check_images(bag) > 0
    # The recorder reports its own rates and drop counts on /diagnostics.
    values = {}
    for _, _, _, raw in iter_messages(bag, ["/diagnostics"]):
        for status in deserialize_message(raw, DiagnosticArray).status:
            if status.name.endswith(": recorder"):
                values = {kv.key: kv.value for kv in status.values}
    assert values["dropped"] == "0" and values["failed"] == "0"
    assert float(values[f"{JOINTS}.rate_hz"]) > 5


@pytest.mark.ros
def test_recorder_main_stops_cleanly_on_sigint(publisher, tmp_path: Path):
    bag = tmp_path / "bag"
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot_memory.apps.record_cli", "-o", str(bag), JOINTS],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    # Interrupt once the recorder says it has written messages (its progress
    # line), not after a fixed sleep: start-up time varies with the machine.
    deadline = time.monotonic() + 60.0 * TIMEOUT_SCALE
    while not any(re.search(r"\] [1-9]\d* msgs", line) for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    reader.join(timeout=5)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "stopped by interrupt" in out
    assert bag_summary(bag).topics[JOINTS].count > 0, out


@pytest.mark.ros
def test_record_refuses_existing_output(tmp_path: Path):
    with pytest.raises(FileExistsError):
        record(tmp_path, [JOINTS], duration_s=0.1, progress=False)
