"""Scenario bags (small versions, recorded in-process from the real sim and the
scripted expert) checked against the ground truth recorded inside them and
against the camera frames and poses the bag carries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robot_memory.apps.record_scenarios import main, record_scenario
from robot_memory.apps.scenarios import SCENARIOS, ScenarioConfig
from robot_memory.bag.reader import bag_summary
from robot_memory.perception.projection import in_image, project_point
from robot_memory.replay.bag_frames import CameraFrameEvent, GroundTruthEvent, iter_bag_events
from robot_memory.schemas import GroundTruth

#: Scene colours (sim/cell/tabletop.xml), for counting an object's pixels.
COLOURS = {
    "red": (0.85, 0.12, 0.1),
    "blue": (0.1, 0.3, 0.85),
    "green": (0.15, 0.7, 0.2),
    "purple": (0.55, 0.2, 0.75),
    "yellow": (0.95, 0.85, 0.1),
    "orange": (0.95, 0.5, 0.1),
}


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenarios")
    config = ScenarioConfig.for_size(True, seed=0)
    results = {name: record_scenario(name, out, config) for name in SCENARIOS}
    loaded = {}
    for name, result in results.items():
        frames, truths = [], []
        for event in iter_bag_events(result.bag):
            if isinstance(event, CameraFrameEvent):
                frames.append(event)
            else:
                assert isinstance(event, GroundTruthEvent)
                assert event.truth is not None, event.error
                truths.append((event.stamp, event.truth))
        sidecar = json.loads((out / f"{name}.json").read_text())
        loaded[name] = (result, frames, truths, sidecar)
    return loaded


def pixels_of(frame: CameraFrameEvent, colour: str) -> int:
    rgb = frame.rgb.astype(float)
    total = rgb.sum(axis=2)
    chroma = rgb / np.maximum(total, 1.0)[..., None]
    ref = np.array(COLOURS[colour]) / sum(COLOURS[colour])
    return int(np.sum((np.linalg.norm(chroma - ref, axis=2) < 0.06) & (total > 90)))


def projected_in(frame: CameraFrameEvent, point, margin: float = 0.0) -> bool:
    h, w = frame.rgb.shape[:2]
    uvz = project_point(np.asarray(point), frame.position, frame.quaternion, frame.intrinsics)
    return in_image(uvz, w, h, margin)


def truth_at(truths, t: float) -> GroundTruth:
    before = [gt for stamp, gt in truths if stamp <= t + 1e-6]
    return before[-1] if before else truths[0][1]


def event(sidecar, name: str) -> dict:
    return next(e for e in sidecar["events"] if e["event"] == name)


def test_bags_carry_the_sim_nodes_topics_types_and_frames(bags):
    result, frames, truths, _ = bags["covered"]
    summary = bag_summary(result.bag)
    types = {t: info.msgtype for t, info in summary.topics.items()}
    expected = {
        "/clock": "rosgraph_msgs/msg/Clock",
        "/joint_states": "sensor_msgs/msg/JointState",
        "/sim/ground_truth": "robot_memory_interfaces/msg/GroundTruth",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/tf_static": "tf2_msgs/msg/TFMessage",
    }
    for cam in ("front", "wrist"):
        expected[f"/camera/{cam}/color/image_raw"] = "sensor_msgs/msg/Image"
        expected[f"/camera/{cam}/color/camera_info"] = "sensor_msgs/msg/CameraInfo"
        expected[f"/camera/{cam}/aligned_depth_to_color/image_raw"] = "sensor_msgs/msg/Image"
    assert types == expected
    assert all(f.complete for f in frames)
    assert {f.pose_source for f in frames} == {"tf"}
    assert summary.topics["/tf_static"].count == 1
    assert {f.frame_id for f in frames} == {
        "front_color_optical_frame",
        "wrist_color_optical_frame",
    }
    assert {(f.color_encoding, f.depth_encoding) for f in frames} == {("rgb8", "16UC1")}
    assert frames[0].rgb.shape == (240, 320, 3)
    # rates: 5 Hz cameras, 50 Hz joint states and clock, 5 Hz ground truth (sim time)
    duration = result.sim_duration_s
    assert abs(summary.topics["/camera/front/color/image_raw"].count - 5 * duration) <= 2
    assert abs(summary.topics["/joint_states"].count - 50 * duration) <= 2
    assert abs(len(truths) - 5 * duration) <= 2
    assert result.bag_bytes < 80e6


def test_covered_object_ends_under_the_cover_and_hidden(bags):
    _, frames, truths, sidecar = bags["covered"]
    target_id = event(sidecar, "cover_start")["target"]
    done = event(sidecar, "cover_done")
    assert done["ok"] and "knob" in done["method"]
    final = truths[-1][1]
    target, cover = final.get(target_id), final.get("cover")
    # under the cover per ground truth: inside its box (cover upright on the table)
    local = np.abs(np.subtract(target.position, cover.position))
    assert np.all(local < np.array(cover.size) / 2), (target.position, cover.position)
    assert cover.support == "table" and not cover.grasped
    colour = target.color
    t_start = event(sidecar, "cover_start")["t"]
    before = [f for f in frames if f.camera == "front" and f.stamp <= t_start]
    assert max(pixels_of(f, colour) for f in before) > 100  # seen before
    after = [f for f in frames if f.stamp > done["t"]]
    assert after and max(pixels_of(f, colour) for f in after) < 10  # hidden from both cameras
    assert {f.camera for f in after} == {"front", "wrist"}


def test_moved_object_moves_while_no_camera_sees_it_then_is_seen_there(bags):
    _, frames, truths, sidecar = bags["moved_out_of_view"]
    move = event(sidecar, "person_move")
    oid, t_move = move["object"], move["t"]
    old, new = truth_at(truths, t_move - 0.05).get(oid), truth_at(truths, t_move + 0.5).get(oid)
    assert np.linalg.norm(np.subtract(old.position[:2], new.position[:2])) > 0.1
    assert np.allclose(new.position[:2], move["to"], atol=0.01) and new.support == "table"
    # the last frames before and the first after the move: the object is in no image
    near = [f for f in frames if abs(f.stamp - t_move) <= 0.25]
    assert {f.camera for f in near} == {"front", "wrist"}
    for f in near:
        where = old.position if f.stamp <= t_move else new.position
        assert not projected_in(f, where, margin=10), (f.camera, f.stamp)
    # it was seen at its old place before, and is seen at its new place afterwards
    assert any(projected_in(f, old.position, -20) for f in frames if f.stamp < t_move - 0.3)
    looked = [f for f in frames if f.camera == "wrist" and f.stamp > t_move + 0.6]
    seen = [f for f in looked if projected_in(f, new.position, -20)]
    assert seen and max(pixels_of(f, new.color) for f in seen) > 100
    # and the expert moved another object in the front camera's view
    done = event(sidecar, "expert_move_done")
    assert done["ok"] and done["object"] != oid
    moved = truths[-1][1].get(done["object"])
    front_after = [f for f in frames if f.camera == "front" and f.stamp > done["t"]]
    assert front_after and projected_in(front_after[-1], moved.position, -10)


def test_clutter_puts_several_objects_in_the_bin_and_every_object_is_seen(bags):
    _, frames, truths, sidecar = bags["clutter"]
    final = truths[-1][1]
    in_bin = {o.id for o in final.objects if o.support == "bin"}
    assert len(in_bin) >= 2 and in_bin == set(event(sidecar, "clutter_done")["in_bin"])
    assert truths[0][1].objects and not any(o.support == "bin" for o in truths[0][1].objects)
    for name in SCENARIOS:
        _, frames, truths, _ = bags[name]
        for obj in (o for o in truths[0][1].objects if o.kind == "object"):
            assert any(
                projected_in(f, truth_at(truths, f.stamp).get(obj.id).position, -10) for f in frames
            ), (name, obj.id)


def test_cli_refuses_to_overwrite_and_rejects_unknown_scenarios(tmp_path, capsys):
    (tmp_path / "covered").mkdir()
    assert main(["--out", str(tmp_path), "--scenario", "covered", "--small"]) == 2
    assert "never overwritten" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--scenario", "nope"])


def test_realistic_setting_records_household_objects_with_depth_noise(tmp_path):
    """`--setting realistic`: the household cell, RealSense-class depth (holes,
    quantized), mounts off by 3 mm / 0.3 degrees; the cover goes over the box."""
    assert main(["--out", str(tmp_path), "--scenario", "covered", "--small", "--seed", "1",
                 "--setting", "realistic", "--no-progress"]) == 0  # fmt: skip
    sidecar = json.loads((tmp_path / "covered.json").read_text())
    assert sidecar["config"]["scene"] == "household"
    assert sidecar["config"]["depth_noise"] == "realsense"
    assert sidecar["config"]["extrinsic_error"] == [3.0, 0.3]
    assert event(sidecar, "cover_done")["ok"]
    frames, truth = [], None
    for ev in iter_bag_events(tmp_path / "covered"):
        if isinstance(ev, CameraFrameEvent) and len(frames) < 10:
            frames.append(ev)
        elif isinstance(ev, GroundTruthEvent) and truth is None:
            truth = ev.truth
    assert truth is not None and truth.scene == "household"
    assert {o.shape for o in truth.objects if o.kind == "object"} == {
        "mug", "bowl", "bottle", "can", "box", "screwdriver",
    }  # fmt: skip
    depth = np.concatenate([f.depth[np.isfinite(f.depth)].ravel() for f in frames])
    assert np.mean(depth == 0) > 0.001  # holes (rendered depth has none): edges, dark, dropout
