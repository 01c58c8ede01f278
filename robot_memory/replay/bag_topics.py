"""Which bag topics feed which camera role, and what a bag lacks (ROS-free).

The contract's names are realsense-style: ``/camera/<cam>/color/image_raw``
(``sensor_msgs/Image``, or ``.../image_raw/compressed`` with
``sensor_msgs/CompressedImage``), ``/camera/<cam>/aligned_depth_to_color/image_raw``
(or ``.../compressedDepth``), ``/camera/<cam>/color/camera_info`` and the
camera's pose in ``/tf`` + ``/tf_static`` (the image's ``frame_id``, e.g.
``<cam>_color_optical_frame``), or on ``/camera/<cam>/pose`` in older bags.

A :class:`TopicMap` renames a bag's topics onto those names before anything is
matched: ``--camera NAME=PREFIX`` maps ``PREFIX/...`` to ``/camera/NAME/...``
(``--camera front=/cam0`` reads ``/cam0/color/image_raw``), ``--remap FROM=TO``
renames one topic (``--remap /zed/left/image=/camera/front/color/image_raw``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CAMERA_TOPIC = re.compile(r"^/camera/([^/]+)/")
GROUND_TRUTH_TOPIC = "/sim/ground_truth"
JOINT_STATES_TOPIC = "/joint_states"
TF_TOPIC, TF_STATIC_TOPIC = "/tf", "/tf_static"
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def color_topics(cam: str) -> tuple[str, str]:
    """Raw first: a camera with both is read raw."""
    base = f"/camera/{cam}/color/image_raw"
    return base, f"{base}/compressed"


def depth_topics(cam: str) -> tuple[str, str]:
    base = f"/camera/{cam}/aligned_depth_to_color/image_raw"
    return base, f"{base}/compressedDepth"


def info_topic(cam: str) -> str:
    return f"/camera/{cam}/color/camera_info"


def pose_topic(cam: str) -> str:
    return f"/camera/{cam}/pose"


def _topic(name: str) -> str:
    name = name.strip()
    return "/" + name.strip("/") if name.strip("/") else ""


@dataclass
class TopicMap:
    """Renames bag topics onto the contract's names (see the module doc)."""

    cameras: dict[str, str] = field(default_factory=dict)  # camera name -> bag prefix
    remaps: dict[str, str] = field(default_factory=dict)  # bag topic -> contract topic

    @classmethod
    def parse(cls, cameras: Iterable[str] = (), remaps: Iterable[str] = ()) -> TopicMap:
        """From ``NAME=PREFIX`` and ``FROM=TO`` strings; ValueError if malformed."""
        out = cls()
        for text in cameras:
            name, sep, prefix = text.partition("=")
            if not sep or not name.strip() or "/" in name.strip() or not _topic(prefix):
                raise ValueError(f"--camera {text!r}: expected NAME=PREFIX, e.g. front=/cam0")
            out.cameras[name.strip()] = _topic(prefix)
        for text in remaps:
            src, sep, dst = text.replace(":=", "=").partition("=")
            if not sep or not _topic(src) or not _topic(dst):
                raise ValueError(
                    f"--remap {text!r}: expected FROM=TO, e.g. /rgb=/camera/front/color/image_raw"
                )
            out.remaps[_topic(src)] = _topic(dst)
        return out

    def apply(self, topic: str) -> str:
        if topic in self.remaps:
            return self.remaps[topic]
        for name, prefix in self.cameras.items():
            if topic == prefix or topic.startswith(prefix + "/"):
                return f"/camera/{name}{topic[len(prefix) :]}"
        return topic


@dataclass
class CameraTopics:
    """The bag topics of one camera's roles (None: the bag has none)."""

    name: str
    color: str | None = None
    depth: str | None = None
    info: str | None = None
    pose: str | None = None
    tf: bool = False  # poses can come from /tf

    def missing(self) -> list[str]:
        cam = self.name
        out = []
        if self.color is None:
            out.append(f"{color_topics(cam)[0]} (Image) or {color_topics(cam)[1]}")
        if self.depth is None:
            out.append(f"{depth_topics(cam)[0]} (16UC1/32FC1) or .../compressedDepth")
        if self.info is None:
            out.append(info_topic(cam))
        if self.pose is None and not self.tf:
            out.append(f"/tf + /tf_static with {cam}'s optical frame (or {pose_topic(cam)})")
        return out


def find_cameras(
    topics: Mapping[str, str], topic_map: TopicMap | None = None
) -> tuple[dict[str, CameraTopics], dict[str, str]]:
    """Cameras found in ``topics`` (bag topic -> type) and the renaming used:
    ``({camera: CameraTopics}, {contract topic: bag topic})``. A camera is any
    ``/camera/<cam>/...`` topic after renaming, or one named by ``--camera``."""
    topic_map = topic_map or TopicMap()
    renamed: dict[str, str] = {}
    for topic in topics:
        renamed.setdefault(topic_map.apply(topic), topic)
    names = {m.group(1) for t in renamed if (m := CAMERA_TOPIC.match(t))}
    names |= set(topic_map.cameras)
    has_tf = TF_TOPIC in renamed or TF_STATIC_TOPIC in renamed
    cameras = {}
    for cam in sorted(names):
        found = CameraTopics(cam, tf=has_tf)
        found.color = next((renamed[t] for t in color_topics(cam) if t in renamed), None)
        found.depth = next((renamed[t] for t in depth_topics(cam) if t in renamed), None)
        found.info = renamed.get(info_topic(cam))
        found.pose = renamed.get(pose_topic(cam))
        cameras[cam] = found
    return cameras, renamed


def mapping_hint(topics: Mapping[str, str]) -> str:
    """How to point eval at the image topics a bag has."""
    images = sorted(t for t, ty in topics.items() if ty in IMAGE_TYPES)
    shown = ", ".join(images[:6]) + (", ..." if len(images) > 6 else "")
    where = f"the bag's image topics: {shown}" if images else "the bag has no image topics"
    return (
        f"{where}; map them with --camera NAME=PREFIX (PREFIX/color/image_raw, "
        "PREFIX/aligned_depth_to_color/image_raw, PREFIX/color/camera_info) or "
        "--remap FROM=TO per topic"
    )
