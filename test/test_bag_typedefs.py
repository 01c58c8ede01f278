"""The bag tools' own definitions of the project's interface types
(robot_memory/bag/typedefs.py, parsed from the .msg/.srv/.action text) agree
with what rclpy was built from: the same RIHS01 type hash for every type, and
the same CDR bytes (rclpy serializes, rosbags decodes and encodes again: equal
but for the alignment padding, which rclpy leaves uninitialized)."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from robot_memory.bag.typedefs import CUSTOM_PACKAGES, custom_types, package_dir, typestore
from robot_memory.bag.writer import BagWriter

TS = typestore()
CUSTOM = sorted(custom_types())
MSG_TYPES = [n for n in CUSTOM if n.split("/")[1] == "msg"]
#: A few that must be there: msg/, and what srv/ and action/ generate.
EXPECTED = {
    "robot_memory_interfaces/msg/SceneGraph",
    "robot_memory_interfaces/msg/GroundTruth",
    "robot_memory_interfaces/msg/ObservationFrame",
    "tf2_msgs/msg/TFMessage",
    "robot_memory_interfaces/srv/QueryMemory_Response",
    "robot_memory_interfaces/action/RunSkill_Goal",
    "robot_memory_interfaces/action/ExecuteInstruction_FeedbackMessage",
}


def message_class(name: str) -> type:
    """``pkg/kind/Name`` (or rclpy's ``pkg/Name``) -> the rclpy class."""
    parts = name.split("/")
    pkg, leaf = parts[0], parts[-1]
    for kind in [parts[1]] if len(parts) == 3 else ["msg", "action", "srv"]:
        module = importlib.import_module(f"{pkg}.{kind}")
        if hasattr(module, leaf):
            return getattr(module, leaf)
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", leaf.split("_")[0]).lower()
        try:  # action/srv parts (RunSkill_Goal) live in the private module
            inner = importlib.import_module(f"{pkg}.{kind}._{snake}")
        except ModuleNotFoundError:
            continue
        if hasattr(inner, leaf):
            return getattr(inner, leaf)
    raise LookupError(name)


SCALARS = {
    "boolean": True,
    "string": "héllo",
    "float": 1.5,
    "double": -2.25,
    "octet": b"\x07",
    "char": "a",
}


def sample(kind: str, depth: int = 0) -> Any:
    """A value of rclpy field type ``kind`` with nothing left at its default."""
    if m := re.fullmatch(r"sequence<(.+?)(?:, (\d+))?>", kind):
        inner, bound = m.group(1), m.group(2)
        n = 1 if bound else 2
        if re.fullmatch(r"u?int\d+|float|double", inner):
            return [sample(inner, depth)] * n
        return [sample(inner, depth + 1) for _ in range(n)]
    if m := re.fullmatch(r"(.+)\[(\d+)\]", kind):
        return np.array([sample(m.group(1), depth)] * int(m.group(2)))
    if kind in SCALARS:
        return SCALARS[kind]
    if re.fullmatch(r"u?int\d+", kind):
        return 3 if kind.startswith("u") else -3
    if m := re.fullmatch(r"string<=\d+", kind):
        return "x"
    return filled(message_class(kind), depth + 1)


def filled(cls: type, depth: int = 0) -> Any:
    msg = cls()
    if depth > 4:
        return msg
    for field, kind in cls.get_fields_and_field_types().items():
        setattr(msg, field, sample(kind, depth))
    return msg


def test_every_interface_type_is_defined():
    assert set(CUSTOM) >= EXPECTED
    for package in CUSTOM_PACKAGES:
        assert package_dir(package) is not None, package


@pytest.mark.parametrize("name", CUSTOM)
def test_type_hash_and_cdr_equal_rclpys(name):
    pkg, kind, leaf = name.split("/")
    folder = package_dir(pkg)
    assert folder is not None
    stem = leaf.split("_")[0] if kind != "msg" else leaf
    built = json.loads((folder / kind / f"{stem}.json").read_text())  # rosidl's, at build time
    hashes = {h["type_name"]: h["hash_string"] for h in built["type_hashes"]}
    assert TS.hash_rihs01(name) == hashes[name]
    cls = message_class(name)
    msg = filled(cls)
    raw = serialize_message(msg)
    back = bytes(TS.serialize_cdr(TS.deserialize_cdr(raw, name), name))
    # The same bytes, but for alignment padding (rclpy leaves it uninitialized).
    assert len(back) == len(raw)
    assert all(x == y or x == 0 for x, y in zip(back, raw, strict=True))
    assert deserialize_message(back, cls) == msg


def test_type_hashes_equal_what_rclpy_offers_on_the_graph():
    """The hash a live publisher advertises (what a recorder sees) for each msg/ type."""
    rclpy.init()
    try:
        node = Node("typedefs_hash_probe")
        for i, name in enumerate(MSG_TYPES):
            node.create_publisher(message_class(name), f"/typedefs_probe/t{i}", 1)
        for i, name in enumerate(MSG_TYPES):
            (info,) = node.get_publishers_info_by_topic(f"/typedefs_probe/t{i}")
            assert str(info.topic_type_hash) == TS.hash_rihs01(name), name
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_the_source_tree_gives_the_same_definitions_when_nothing_is_installed(monkeypatch):
    from robot_memory.bag import typedefs

    installed = dict(custom_types())
    monkeypatch.setattr(typedefs, "share_dirs", lambda: [])
    typedefs.custom_types.cache_clear()
    try:
        assert typedefs.package_dir("tf2_msgs") == typedefs.SOURCE_DIRS["tf2_msgs"]
        assert typedefs.custom_types() == installed
    finally:
        typedefs.custom_types.cache_clear()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_type_round_trips_through_a_bag_read_with_only_its_definitions(tmp_path, storage):
    """msg/ types go in as ros2msg text, action and service parts (an action's
    feedback topic) as ros2idl; a plain rosbags reader with an empty type store
    checks each definition against its hash and decodes rclpy's bytes."""
    bag, sent = tmp_path / "bag", {}
    with BagWriter(bag, storage) as writer:
        for i, name in enumerate(CUSTOM):
            topic = f"/t{i}"
            writer.add_topic(topic, name)
            sent[topic] = filled(message_class(name))
            writer.write(topic, serialize_message(sent[topic]), 1000 + i)
    with AnyReader([bag], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert {c.msgtype for c in conns.values()} == set(CUSTOM)
        assert {conns[t].digest for t in sent} == {TS.hash_rihs01(n) for n in CUSTOM}
        for conn, _, raw in reader.messages():
            decoded = reader.deserialize(raw, conn.msgtype)
            again = bytes(reader.typestore.serialize_cdr(decoded, conn.msgtype))
            assert deserialize_message(again, type(sent[conn.topic])) == sent[conn.topic]
