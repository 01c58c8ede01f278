"""CameraSync: pairing colour, depth, info and a pose (a pose stream, or /tf at the
image stamp through a TransformBuffer) by stamp (pure, no ROS)."""

import pytest

from robot_memory.perception.camera_sync import CameraSync, SyncError
from robot_memory.transforms.tf_buffer import TransformBuffer, TransformError


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


# -- poses from a transform buffer (/tf) at the image stamp ----------------------------
def tf_sync(buf: TransformBuffer, drops: list[str], wait_s: float = 0.3) -> CameraSync:
    def pose(stamp: float, _color: str):
        try:
            return buf.lookup("world", "cam_optical", stamp, tolerance_s=0.0)
        except TransformError:
            return None

    sync = CameraSync(
        "front", pose_wait_s=wait_s, on_drop=lambda r, _d: drops.append(r), pose_source=pose
    )
    sync.set_info("K")
    return sync


def mount_at(buf: TransformBuffer, t: float, x: float) -> None:
    buf.add("world", "mount", t, (x, 0.0, 0.5), (1.0, 0.0, 0.0, 0.0))


def test_a_frame_waits_for_its_transform_and_gets_the_pose_at_its_stamp():
    buf, drops = TransformBuffer(tolerance_s=0.0), []
    buf.add("mount", "cam_optical", 0.0, (0.0, 0.0, 0.1), (1.0, 0.0, 0.0, 0.0), static=True)
    sync = tf_sync(buf, drops)
    mount_at(buf, 0.9, 0.0)
    assert sync.add_color(1.0, "c") is None
    assert sync.add_depth(1.0, "d") is None  # /tf only up to 0.9: waits
    assert sync.poll() is None
    mount_at(buf, 1.1, 0.2)  # the late sample
    frame = sync.poll()
    assert frame is not None and frame.stamp == 1.0
    assert frame.pose.translation == pytest.approx([0.1, 0.0, 0.6])  # halfway, + the static
    assert drops == []


def test_a_frame_whose_transform_never_comes_is_dropped_not_given_an_old_pose():
    buf, drops = TransformBuffer(tolerance_s=0.0), []
    buf.add("mount", "cam_optical", 0.0, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), static=True)
    mount_at(buf, 0.95, 0.0)  # the last /tf before the images
    sync = tf_sync(buf, drops)
    released = []
    for i in range(6):
        t = 1.0 + 0.1 * i
        released += [f for f in (sync.add_color(t, "c"), sync.add_depth(t, "d")) if f]
    assert released == []
    assert drops and set(drops) == {"missing transform"}
    assert len(drops) == 3  # 1.0, 1.1, 1.2: older than the 0.3 s wait; 1.3-1.5 still wait
    mount_at(buf, 1.6, 0.0)
    assert sync.poll().stamp == pytest.approx(1.5)  # the newest; the older ones drop
    assert drops == ["missing transform"] * 3 + ["superseded"] * 2


def test_static_transforms_hold_at_every_time_and_a_time_jump_clears_dynamic_ones():
    buf = TransformBuffer(tolerance_s=0.0)
    buf.add("world", "cam_optical", 5.0, (1.0, 2.0, 3.0), (1.0, 0.0, 0.0, 0.0), static=True)
    for stamp in (0.0, 5.0, 1e6):
        assert buf.lookup("world", "cam_optical", stamp).translation == pytest.approx([1, 2, 3])
    mount_at(buf, 10.0, 0.3)
    buf.clear()
    with pytest.raises(TransformError):
        buf.lookup("world", "mount", 10.0)
    assert buf.lookup("world", "cam_optical", 0.0).translation == pytest.approx([1, 2, 3])
    mount_at(buf, 10.0, 0.3)
    with pytest.raises(TransformError, match="after the last"):
        buf.lookup("world", "mount", 10.01, tolerance_s=0.0)
    assert buf.lookup("world", "mount", 10.01, tolerance_s=0.05).translation[0] == 0.3
