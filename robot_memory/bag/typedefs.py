"""What rosbags' message definitions refer to (shared by the bag reader and writer)."""

from __future__ import annotations

from collections.abc import Iterable

from rosbags.typesys.base import Nodetype


def referenced_types(fields: Iterable[tuple[str, tuple]]) -> set[str]:
    """Message types that ``fields`` (a rosbags field list) refer to."""
    found: set[str] = set()

    def walk(desc: tuple) -> None:
        kind, arg = desc
        if kind == Nodetype.NAME:
            found.add(arg)
        elif kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            walk(arg[0])

    for _, desc in fields:
        walk(desc)
    return found
