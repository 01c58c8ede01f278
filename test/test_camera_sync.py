"""CameraSync: pairing colour, depth, info and pose by stamp (pure, no ROS)."""

import pytest

from robot_memory.camera_sync import CameraSync, SyncError


def feed(sync: CameraSync, t: float, *, pose: bool = True):
    out = [sync.add_color(t, f"c{t}"), sync.add_depth(t, f"d{t}")]
    if pose:
        out.append(sync.add_pose(t, f"p{t}"))
    return [f for f in out if f is not None]


def test_frame_released_once_all_four_streams_agree():
    sync = CameraSync("front")
    sync.set_info("K")
    frames = feed(sync, 1.0)
    assert len(frames) == 1
    f = frames[0]
    assert (f.camera, f.stamp, f.color, f.depth, f.info, f.pose) == (
        "front",
        1.0,
        "c1.0",
        "d1.0",
        "K",
        "p1.0",
    )
    assert feed(sync, 1.1)[0].stamp == 1.1


def test_depth_with_other_stamp_does_not_pair():
    sync = CameraSync("front", tolerance_s=0.01)
    sync.set_info("K")
    sync.add_pose(1.0, "p")
    assert sync.add_color(1.0, "c") is None
    assert sync.add_depth(1.05, "d") is None


def test_missing_camera_info_is_reported():
    sync = CameraSync("wrist")
    with pytest.raises(SyncError) as err:
        feed(sync, 1.0)
    assert err.value.reason == "missing camera_info"
    sync.set_info("K")
    assert feed(sync, 1.1)[0].stamp == 1.1


def test_missing_pose_is_reported_after_waiting():
    sync = CameraSync("front", pose_wait_s=0.3)
    sync.set_info("K")
    assert feed(sync, 1.0, pose=False) == []  # may still come
    with pytest.raises(SyncError) as err:
        feed(sync, 1.5, pose=False)
    assert err.value.reason == "missing pose"


def test_time_jump_backwards_clears_buffers():
    sync = CameraSync("front")
    sync.set_info("K")
    feed(sync, 10.0)
    sync.add_color(10.1, "stale colour")
    with pytest.raises(SyncError) as err:
        sync.add_color(0.5, "c")
    assert err.value.reason == "time went backwards"
    # After the jump the new timeline pairs normally, without stale halves.
    frames = feed(sync, 0.6)
    assert [f.color for f in frames] == ["c0.6"]
