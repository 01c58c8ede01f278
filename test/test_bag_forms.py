"""`robot-memory replay` and `eval` on every form of rosbag2 bag that `ros2 bag
record` writes, generated here with rosbags: MCAP and sqlite3 at versions 8
and 9, a bag split into two files, a bag without type definitions, service
events, types rclpy does not have, a talker bag, compressed cameras, camera
poses only in /tf, cameras under other names. Each either works or is refused
with one line and a non-zero exit status."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from test_replay import short_bag

from robot_memory.bag.ground_truth import ground_truth_from_bag_msg
from robot_memory.bag.reader import BagReader, bag_summary
from robot_memory.bag.typedefs import typestore
from robot_memory.cli import main
from robot_memory.payload_codec import dump_payload
from robot_memory.perception.image_messages import decode_depth, encode_compressed_depth
from robot_memory.replay.bag_frames import CameraFrameEvent, GroundTruthEvent, iter_bag_events
from robot_memory.replay.bag_topics import TopicMap
from robot_memory.transforms.tf_buffer import TransformBuffer, TransformError, slerp

TS = typestore()  # the standard types and the project's (GroundTruth, TFMessage)
STRING = "std_msgs/msg/String"
SERVICE_EVENT = "test_msgs/srv/BasicTypes_Event"
SRV_TEXT = "bool bool_value\nint32 int32_value\n---\nbool bool_value\nint32 int32_value\n"
FOO = "test_msgs/msg/Foo"
RIHS = "RIHS01_" + "ab" * 32
ROBOT_MEMORY = str(Path(sys.executable).parent / "robot-memory")


def ser(msgtype: str, **fields) -> bytes:
    return bytes(TS.serialize_cdr(TS.types[msgtype](**fields), msgtype))


def write_bag(path: Path, topics: dict, messages: list, storage="mcap", version=9) -> Path:
    """``topics``: name -> (msgtype, msgdef or None for the store's). ``messages``:
    (topic, ns, raw) in any order."""
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=version, storage_plugin=plugin) as writer:
        conns = {}
        for topic, (msgtype, msgdef) in topics.items():
            if msgdef is None:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
            else:
                conns[topic] = writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=RIHS)
        for topic, ns, raw in sorted(messages, key=lambda m: m[1]):
            writer.write(conns[topic], ns, raw)
    return path


def chatter(n=20, t0=1_700_000_000_000_000_000):
    return [("/chatter", t0 + i * 50_000_000, ser(STRING, data=f"hello {i}")) for i in range(n)]


def split_bag(path: Path, tmp: Path) -> Path:
    """One bag in two MCAP files, as `ros2 bag record --max-bag-size` writes it."""
    msgs = chatter()
    parts = [write_bag(tmp / f"part{i}", {"/chatter": (STRING, None)}, m) for i, m in
             enumerate((msgs[:12], msgs[12:]))]  # fmt: skip
    path.mkdir()
    metas = [yaml.safe_load((p / "metadata.yaml").read_text()) for p in parts]
    info = metas[0]["rosbag2_bagfile_information"]
    files, names = [], []
    for i, (part, meta) in enumerate(zip(parts, metas, strict=True)):
        name = f"{path.name}_{i}.mcap"
        shutil.copy(next(part.glob("*.mcap")), path / name)
        names.append(name)
        files += [dict(f, path=name) for f in meta["rosbag2_bagfile_information"]["files"]]
    info["relative_file_paths"], info["files"] = names, files
    info["message_count"] = len(msgs)
    info["topics_with_message_count"][0]["message_count"] = len(msgs)
    info["duration"]["nanoseconds"] = msgs[-1][1] - msgs[0][1] + 1
    (path / "metadata.yaml").write_text(yaml.safe_dump(metas[0]))
    return path


def no_definitions(path: Path) -> Path:
    """sqlite3 without type definitions, as rosbag2 before Iron wrote it."""
    write_bag(path, {"/chatter": (STRING, None)}, chatter(), "sqlite3", 8)
    with sqlite3.connect(next(path.glob("*.db3"))) as db:
        db.execute("DELETE FROM message_definitions")
    return path


def service_events(path: Path) -> Path:
    topics = {"/chatter": (STRING, None), "/srv/_service_event": (SERVICE_EVENT, SRV_TEXT)}
    events = [("/srv/_service_event", 1_700_000_000_000_000_000 + i, b"\0\1\0\0" + bytes(40))
              for i in range(5)]  # fmt: skip
    return write_bag(path, topics, [*chatter(), *events])


def custom_types(path: Path) -> Path:
    topics = {
        "/chatter": (STRING, None),
        "/foo": (FOO, "int32 x\nstring name\n"),
        "/old_style": ("std_msgs/String", TS.generate_msgdef(STRING)[0]),  # pre-Foxy name
    }
    t0 = 1_700_000_000_000_000_000
    foo = [("/foo", t0 + i, b"\0\1\0\0" + bytes([1, 0, 0, 0, 2, 0, 0, 0, 97, 0])) for i in range(3)]
    old = [("/old_style", t0 + i + 10, ser(STRING, data="old")) for i in range(4)]
    return write_bag(path, topics, [*chatter(), *foo, *old], "sqlite3", 9)


FORMS = {
    "mcap_v9": lambda p, t: write_bag(p, {"/chatter": (STRING, None)}, chatter()),
    "mcap_v8": lambda p, t: write_bag(p, {"/chatter": (STRING, None)}, chatter(), "mcap", 8),
    "sqlite3_v9": lambda p, t: write_bag(p, {"/chatter": (STRING, None)}, chatter(), "sqlite3"),
    "sqlite3_v8": lambda p, t: write_bag(p, {"/chatter": (STRING, None)}, chatter(), "sqlite3", 8),
    "split": split_bag,
    "no_definitions": lambda p, t: no_definitions(p),
    "service_events": lambda p, t: service_events(p),
    "custom_types": lambda p, t: custom_types(p),
}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [ROBOT_MEMORY, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def one_error_line(stderr: str, command: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"robot-memory {command}: error: "), stderr
    return lines[0]


def replay_summary(stdout: str) -> dict:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("replay summary: "))
    return json.loads(line.removeprefix("replay summary: "))


@pytest.mark.parametrize("form", FORMS)
def test_every_form_replays_what_it_can_and_eval_names_the_missing_topics(form, tmp_path, capsys):
    bag = FORMS[form](tmp_path / form, tmp_path)
    assert bag_summary(bag).topics["/chatter"].count == 20
    run = cli("replay", str(bag), "--fast", "--no-progress")
    assert run.returncode == 0, run.stdout + run.stderr
    summary = replay_summary(run.stdout)
    assert summary["counts"]["/chatter"] == 20 and summary["stopped_by"] == "end"
    assert "replay: /chatter: replayed 20 messages (20 in the bag)" in run.stdout
    skipped = summary["skipped"]
    if form == "service_events":
        assert skipped["/srv/_service_event"]["messages"] == 5
        assert "not installed" in skipped["/srv/_service_event"]["reason"]
    elif form == "custom_types":
        assert skipped["/foo"] == {
            "type": FOO,
            "messages": 3,
            "reason": "type test_msgs/msg/Foo is not installed (no Python module 'test_msgs')",
        }
        assert summary["counts"]["/old_style"] == 4  # std_msgs/String read as std_msgs/msg/String
        assert "replay: /foo: skipped 3 messages: type test_msgs/msg/Foo" in run.stdout
    else:
        assert skipped == {}
    assert main(["eval", str(bag), "--out", str(tmp_path / "eval"), "--no-progress"]) == 2
    line = one_error_line(capsys.readouterr().err, "eval")
    assert "no camera in" in line and "--camera NAME=PREFIX" in line and "--remap" in line


def test_bad_bags_are_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "not_a_bag").mkdir()
    corrupt = write_bag(tmp_path / "corrupt", {"/chatter": (STRING, None)}, chatter())
    next(corrupt.glob("*.mcap")).write_bytes(b"\x89MCAP0\r\n" + bytes(100))
    foo = [("/foo", 1, b"\0\1\0\0" + bytes(4))]
    only_custom = write_bag(tmp_path / "custom", {"/foo": (FOO, "int32 x\n")}, foo)
    for bag, why in (
        (tmp_path / "not_a_bag", "has no metadata.yaml"),
        (corrupt, "cannot open bag"),
        (tmp_path / "missing", "no bag at"),
    ):
        run = cli("replay", str(bag), "--fast", "--no-progress")
        assert run.returncode == 2 and why in one_error_line(run.stderr, "replay")
        assert main(["eval", str(bag), "--no-progress"]) == 2
        assert why in one_error_line(capsys.readouterr().err, "eval")
    run = cli("replay", str(only_custom), "--fast", "--no-progress")
    line = one_error_line(run.stderr, "replay")
    assert run.returncode == 2 and "nothing to replay" in line and "test_msgs/msg/Foo" in line
    with BagReader(only_custom) as reader:  # rosbags can still decode it (its definition)
        assert reader.why_undecodable(FOO) is None
    with BagReader(service_events(tmp_path / "srv")) as reader:
        assert "does not parse" in reader.why_undecodable(SERVICE_EVENT)
        assert reader.why_undecodable(STRING) is None


# --- camera bags: derived from a short scenario bag recorded with the sim ---------


@pytest.fixture(scope="module")
def camera_bag(tmp_path_factory):
    return short_bag(tmp_path_factory.mktemp("forms") / "base", "mcap", hold_s=0.6)


@pytest.fixture(scope="module")
def legacy_bag(camera_bag, tmp_path_factory):
    """The camera bag as the stack recorded it before typed interfaces: ground
    truth as JSON in std_msgs/String, poses on /camera/<cam>/pose, no /tf."""
    poses = {(f.camera, f.stamp): f for fs in frames_of(camera_bag).values() for f in fs}
    geo, types = "geometry_msgs/msg/", TS.types

    def legacy(topic, msgtype, msg, ns):
        if topic in ("/tf", "/tf_static"):
            return []
        if topic == "/sim/ground_truth":
            text = dump_payload(ground_truth_from_bag_msg(msg))
            return [(topic, STRING, types[STRING](text), ns)]
        out = [(topic, msgtype, msg, ns)]
        if topic.endswith("/color/image_raw"):
            cam = topic.split("/")[2]
            f = poses[(cam, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)]
            (x, y, z), (qw, qx, qy, qz) = f.position, f.quaternion
            pose = types[geo + "Pose"](types[geo + "Point"](x, y, z),
                                       types[geo + "Quaternion"](qx, qy, qz, qw))  # fmt: skip
            header = types["std_msgs/msg/Header"](msg.header.stamp, "world")
            stamped = types[geo + "PoseStamped"](header, pose)
            out.append((f"/camera/{cam}/pose", geo + "PoseStamped", stamped, ns))
        return out

    return rewrite(camera_bag, tmp_path_factory.mktemp("legacy") / "legacy", legacy)


def test_older_bags_with_json_ground_truth_and_pose_topics_still_read(
    camera_bag, legacy_bag, tmp_path
):
    types = {t: i.msgtype for t, i in bag_summary(legacy_bag).topics.items()}
    assert types["/sim/ground_truth"] == STRING and "/tf" not in types
    assert types["/camera/wrist/pose"] == "geometry_msgs/msg/PoseStamped"
    new, old = list(iter_bag_events(camera_bag)), list(iter_bag_events(legacy_bag))
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        assert type(a) is type(b) and a.stamp == b.stamp
        if isinstance(a, GroundTruthEvent):
            assert a.truth is not None and a.truth == b.truth
        else:
            assert a.complete and b.complete, b.missing
            assert (a.pose_source, b.pose_source) == ("tf", "pose topic")
            np.testing.assert_allclose(b.position, a.position, atol=1e-9)
    meta = eval_frames(legacy_bag, tmp_path / "eval")
    assert meta["frames"]["front"] >= 4 and meta["frames"]["wrist"] >= 4, meta


def rewrite(src: Path, dst: Path, change, storage="mcap") -> Path:
    """Copy a bag, with ``change(topic, msgtype, msg, ns)`` -> [(topic, msgtype, msg, ns)]."""
    out: list = []
    with BagReader(src) as reader:
        for conn, ns, raw in reader.read(reader.connections):
            msg = reader.decode(raw, conn.msgtype)
            out += change(conn.topic, conn.msgtype, msg, ns)
    topics = {topic: (msgtype, None) for topic, msgtype, _, _ in out}
    messages = [(t, ns, bytes(TS.serialize_cdr(m, ty))) for t, ty, m, ns in out]
    return write_bag(dst, topics, messages, storage)


def compress(topic, msgtype, msg, ns):
    """front: jpeg + 16UC1 compressedDepth; wrist: png + 32FC1 compressedDepth."""
    import cv2

    if msgtype != "sensor_msgs/msg/Image":
        return [(topic, msgtype, msg, ns)]
    cam = topic.split("/")[2]
    image = TS.types["sensor_msgs/msg/CompressedImage"]
    if "/color/" in topic:
        rgb = np.asarray(msg.data).reshape(msg.height, msg.width, 3)
        kind = ".jpg" if cam == "front" else ".png"
        data = cv2.imencode(kind, rgb[:, :, ::-1])[1].ravel()
        fmt = f"rgb8; {'jpeg' if kind == '.jpg' else 'png'} compressed bgr8"
        return [(topic + "/compressed", image.__msgtype__, image(msg.header, fmt, data), ns)]
    enc = "16UC1" if cam == "front" else "32FC1"
    data = np.frombuffer(encode_compressed_depth(decode_depth(msg), enc), np.uint8)
    fmt = f"{enc}; compressedDepth png"
    return [(topic + "/compressedDepth", image.__msgtype__, image(msg.header, fmt, data), ns)]


def tf_only(topic, msgtype, msg, ns, state={}):  # noqa: B006 - counts wrist samples
    """Poses become /tf_static world -> panda_link0 and link0 -> camera frame
    (front static on /tf_static, wrist on /tf at every other pose)."""
    from robot_memory.transforms.tf_buffer import Transform

    if not topic.endswith("/pose"):
        return [(topic, msgtype, msg, ns)]
    cam = topic.split("/")[2]
    base = Transform(np.array([0.1, -0.2, 0.05]), np.array([np.cos(0.3), 0, 0, np.sin(0.3)]))
    p, o = msg.pose.position, msg.pose.orientation
    pose = Transform(np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z]))
    rel = base.inverse().compose(pose)
    geo, tf2 = "geometry_msgs/msg/", "tf2_msgs/msg/TFMessage"
    types = TS.types

    def stamped(parent, child, tr, stamp):
        t, q = tr.translation, tr.rotation
        header = types["std_msgs/msg/Header"](stamp, parent)
        transform = types[geo + "Transform"](
            types[geo + "Vector3"](*t), types[geo + "Quaternion"](q[1], q[2], q[3], q[0])
        )
        return types[geo + "TransformStamped"](header, child, transform)

    frame = f"{cam}_color_optical_frame"
    if cam == "front":
        if state.get("front"):
            return []
        state["front"] = True
        both = [stamped("world", "panda_link0", base, msg.header.stamp),
                stamped("panda_link0", frame, rel, msg.header.stamp)]  # fmt: skip
        return [("/tf_static", tf2, types[tf2](both), ns)]
    state["wrist"] = state.get("wrist", 0) + 1
    if state["wrist"] % 2 == 0:
        return []
    return [("/tf", tf2, types[tf2]([stamped("panda_link0", frame, rel, msg.header.stamp)]), ns)]


def frames_of(bag, **kwargs) -> dict[str, list[CameraFrameEvent]]:
    out: dict[str, list] = {}
    for event in iter_bag_events(bag, **kwargs):
        if isinstance(event, CameraFrameEvent):
            out.setdefault(event.camera, []).append(event)
    return out


def eval_frames(bag: Path, out: Path, *extra: str) -> dict:
    assert main(["eval", str(bag), "--out", str(out), "--no-progress", *extra]) == 0
    return json.loads((out / "report.json").read_text())["meta"]


def test_compressed_cameras_decode_and_evaluate(camera_bag, tmp_path):
    bag = rewrite(camera_bag, tmp_path / "compressed", compress, "sqlite3")
    raw, comp = frames_of(camera_bag), frames_of(bag)
    for cam in ("front", "wrist"):
        assert len(comp[cam]) == len(raw[cam]) >= 4
        for a, b in zip(raw[cam], comp[cam], strict=True):
            assert b.complete, b.missing
            diff = np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean()
            assert diff < (4 if cam == "front" else 1e-9)  # jpeg / png
            rtol = 0 if cam == "front" else 1e-4  # mm / inverse depth: step d^2 / 10100
            # inverse depth holds 0.152 m and beyond; nearer is stored as no return
            valid = a.depth > (0 if cam == "front" else 0.1518)
            np.testing.assert_allclose(b.depth[valid], a.depth[valid], atol=1e-3, rtol=rtol)
            assert np.all(b.depth[(a.depth > 0) & ~valid] == 0)
    meta = eval_frames(bag, tmp_path / "eval")
    assert meta["frames"]["front"] >= 4 and meta["frames"]["wrist"] >= 4, meta


def test_camera_poses_come_from_tf(legacy_bag, tmp_path):
    """Poses of another tree (a moved base, the wrist at half the rate) from /tf."""
    bag = rewrite(legacy_bag, tmp_path / "tf", tf_only)
    assert not any(t.endswith("/pose") for t in bag_summary(bag).topics)
    raw, tf = frames_of(legacy_bag), frames_of(bag)
    for cam in ("front", "wrist"):
        n = len(raw[cam])
        assert len(tf[cam]) == n
        for i, (a, b) in enumerate(zip(raw[cam], tf[cam], strict=True)):
            if cam == "front" or i % 2 == 0:  # a transform at the frame's stamp
                assert b.complete and b.pose_source == "tf", b.missing
                np.testing.assert_allclose(b.position, a.position, atol=1e-9)
                assert abs(abs(np.dot(a.quaternion, b.quaternion)) - 1) < 1e-9
            elif i + 1 < n:  # interpolated between the wrist's neighbouring samples
                assert b.complete and b.pose_source == "tf", b.missing
                before, after = raw[cam][i - 1], raw[cam][i + 1]
                s = (b.stamp - before.stamp) / (after.stamp - before.stamp)
                lerp = before.position + s * (after.position - before.position)
                np.testing.assert_allclose(b.position, lerp, atol=1e-6)
                q = slerp(before.quaternion, after.quaternion, s)
                assert abs(abs(np.dot(q, b.quaternion)) - 1) < 1e-6
            else:  # past the last sample by more than the tolerance
                assert "after the last sample" in b.missing
    meta = eval_frames(bag, tmp_path / "eval")
    assert meta["frames"]["front"] >= 4 and meta["frames"]["wrist"] >= 4, meta
    no_world = frames_of(bag, world_frame="map")["front"][0]
    assert "no /tf path from 'map'" in no_world.missing


def test_a_tf_written_late_by_a_lagging_recorder_still_poses_the_frames(legacy_bag, tmp_path):
    """A recorder on a loaded machine writes /tf up to a second after the
    images it belongs to (its own subscription lags): frames wait for it."""

    def delayed(lag_ns: int):
        state: dict = {}  # tf_only's own, fresh for each bag

        def change(topic, msgtype, msg, ns):
            return [(t, ty, m, n + lag_ns if t == "/tf" else n)
                    for t, ty, m, n in tf_only(topic, msgtype, msg, ns, state)]  # fmt: skip

        return change

    on_time = frames_of(rewrite(legacy_bag, tmp_path / "tf", delayed(0)))["wrist"]
    bag = rewrite(legacy_bag, tmp_path / "late", delayed(800_000_000))
    late = frames_of(bag)["wrist"]
    assert [f.missing for f in late] == [f.missing for f in on_time]
    posed = sum(f.pose_source == "tf" for f in late)
    assert posed >= len(late) - 1 >= 4  # every one, or all but one past the last sample
    impatient = frames_of(bag, tf_wait_s=0.0)["wrist"]  # as before: 0.25 s of bag time
    assert sum(f.pose_source == "tf" for f in impatient) < posed


def test_cameras_under_other_names_are_mapped(legacy_bag, tmp_path, capsys):
    def rename(topic, msgtype, msg, ns):
        if topic == "/camera/wrist/pose":
            return []  # and no /tf: the error must say where poses come from
        if topic.startswith("/camera/front/"):
            topic = topic.replace("/camera/front/", "/rig/cam0/").replace(
                "/color/image_raw", "/rgb"
            )
        return [(topic, msgtype, msg, ns)]

    bag = rewrite(legacy_bag, tmp_path / "renamed", rename)
    assert main(["eval", str(bag), "--no-progress", "--out", str(tmp_path / "e1")]) == 2
    line = one_error_line(capsys.readouterr().err, "eval")
    assert "camera wrist lacks /tf + /tf_static with wrist's optical frame" in line
    assert "/rig/cam0/rgb" in line
    mapped = ["--camera", "front=/rig/cam0"]
    assert main(["eval", str(bag), "--no-progress", *mapped]) == 2  # colour still unnamed
    line = one_error_line(capsys.readouterr().err, "eval")
    assert "camera front lacks /camera/front/color/image_raw" in line
    mapped += ["--remap", "/rig/cam0/rgb=/camera/front/color/image_raw"]
    meta = eval_frames(bag, tmp_path / "e2", *mapped)
    assert meta["frames"]["front"] >= 4 and "wrist" not in meta["frames"], meta
    assert "camera wrist lacks /tf + /tf_static" in capsys.readouterr().err  # a note
    with pytest.raises(SystemExit):
        main(["eval", str(bag), "--camera", "front"])  # malformed: a usage error
    assert "expected NAME=PREFIX" in capsys.readouterr().err


def test_transform_buffer_chains_interpolates_and_says_what_is_missing():
    buf = TransformBuffer(tolerance_s=0.05)
    quarter = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])  # 90 deg about z
    buf.add("world", "base", 0.0, (1, 0, 0), quarter, static=True)
    buf.add("/base", "cam", 1.0, (0, 0, 0), (1, 0, 0, 0))
    buf.add("base", "cam", 2.0, (2, 0, 0), quarter)
    mid = buf.lookup("world", "cam", 1.5)
    np.testing.assert_allclose(mid.translation, [1, 1, 0], atol=1e-12)  # (1,0,0) rotated
    three_eighths = [np.cos(3 * np.pi / 8), 0, 0, np.sin(3 * np.pi / 8)]  # 90 + 45 deg
    np.testing.assert_allclose(mid.rotation, three_eighths, atol=1e-12)
    half = buf.lookup("base", "cam", 1.5).rotation
    np.testing.assert_allclose(half, [np.cos(np.pi / 8), 0, 0, np.sin(np.pi / 8)], atol=1e-12)
    back = buf.lookup("cam", "world", 2.0).compose(buf.lookup("world", "cam", 2.0))
    np.testing.assert_allclose(back.translation, 0, atol=1e-12)
    with pytest.raises(TransformError, match="after the last sample"):
        buf.lookup("world", "cam", 3.0)
    with pytest.raises(TransformError, match="not in /tf"):
        buf.lookup("world", "lidar", 1.0)
    buf.add("map", "odom", 0.0, (0, 0, 0), (1, 0, 0, 0), static=True)
    with pytest.raises(TransformError, match=r"tree roots: \['map', 'world'\]"):
        buf.lookup("map", "cam", 1.5)


def test_topic_map_renames_prefixes_and_single_topics():
    tmap = TopicMap.parse(["front=/rig/cam0/"], ["rig/rgb:=/camera/front/color/image_raw"])
    assert tmap.apply("/rig/cam0/color/camera_info") == "/camera/front/color/camera_info"
    assert tmap.apply("/rig/rgb") == "/camera/front/color/image_raw"
    assert tmap.apply("/rig/cam01/x") == "/rig/cam01/x" and tmap.apply("/tf") == "/tf"
    for bad in (["front"], ["a/b=/x"], ["front="]):
        with pytest.raises(ValueError, match="NAME=PREFIX"):
            TopicMap.parse(bad)
    with pytest.raises(ValueError, match="FROM=TO"):
        TopicMap.parse([], ["/only"])
