"""Message definitions for rosbags (ROS-free): the project's own interface types.

rosbags knows the standard ROS 2 types from its built-in type stores, but not
``robot_memory_interfaces`` nor ``tf2_msgs`` (not in the pip world's wheels).
:func:`custom_types` parses their definitions from ``.msg`` / ``.srv`` /
``.action`` text, so the bag writer can put each definition into a bag (MCAP
schema / sqlite3 ``message_definitions``) and the bag tools can decode them
without the message packages. The text comes from the installed interface
package (``share/<package>/`` under ``$AMENT_PREFIX_PATH`` or this Python's
prefix, what the nodes were built from) or, when not installed, from this
repository's source folders. No rclpy, no message package is imported.

Services and actions give the message types that can travel on a topic:
``<Srv>_Request``/``_Response``; ``<Action>_Goal``/``_Result``/``_Feedback``,
``_FeedbackMessage`` (the action's feedback topic), ``_SendGoal_Request``/
``_Response`` and ``_GetResult_Request``/``_Response``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype
from rosbags.typesys.store import Typestore

#: Interface packages this project defines (or builds for the pip world).
CUSTOM_PACKAGES = ("robot_memory_interfaces", "tf2_msgs")
ROOT = Path(__file__).resolve().parents[2]
#: Source folders of the packages in a checkout of this repository.
SOURCE_DIRS = {
    "robot_memory_interfaces": ROOT / "robot_memory_interfaces",
    "tf2_msgs": ROOT / "third_party" / "tf2_msgs",
}
_SEP = "\n---\n"


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


def share_dirs() -> list[Path]:
    """``share`` folders that may hold installed interface packages: each
    ``$AMENT_PREFIX_PATH`` entry (a sourced ROS 2 workspace) and this Python's
    prefix (where the pip world builds them)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    out: list[Path] = []
    for prefix in prefixes:
        share = Path(prefix) / "share"
        if share.is_dir() and share not in out:
            out.append(share)
    return out


def package_dir(package: str) -> Path | None:
    """Where ``package``'s interface files are: installed first, else the source."""
    for share in share_dirs():
        if (share / package / "package.xml").is_file() or (share / package / "msg").is_dir():
            return share / package
    source = SOURCE_DIRS.get(package)
    return source if source is not None and source.is_dir() else None


def _split(text: str, parts: int, name: str) -> list[str]:
    body = "\n" + text.replace("\r\n", "\n") + "\n"
    pieces = [p.strip("\n") + "\n" for p in body.split(_SEP)]
    if len(pieces) != parts:
        raise ValueError(f"{name}: expected {parts} parts separated by '---', got {len(pieces)}")
    return pieces


def _definitions(package: str, folder: Path) -> Iterator[tuple[str, str]]:
    """``(type name, .msg text)`` for every type of one package folder."""
    for path in sorted((folder / "msg").glob("*.msg")):
        yield f"{package}/msg/{path.stem}", path.read_text()
    for path in sorted((folder / "srv").glob("*.srv")):
        base = f"{package}/srv/{path.stem}"
        request, response = _split(path.read_text(), 2, base)
        yield f"{base}_Request", request
        yield f"{base}_Response", response
    for path in sorted((folder / "action").glob("*.action")):
        base = f"{package}/action/{path.stem}"
        goal, result, feedback = _split(path.read_text(), 3, base)
        yield f"{base}_Goal", goal
        yield f"{base}_Result", result
        yield f"{base}_Feedback", feedback
        uuid = "unique_identifier_msgs/UUID goal_id\n"
        yield f"{base}_FeedbackMessage", f"{uuid}{base}_Feedback feedback\n"
        yield f"{base}_SendGoal_Request", f"{uuid}{base}_Goal goal\n"
        yield f"{base}_SendGoal_Response", "bool accepted\nbuiltin_interfaces/Time stamp\n"
        yield f"{base}_GetResult_Request", uuid
        yield f"{base}_GetResult_Response", f"int8 status\n{base}_Result result\n"


@functools.cache
def custom_types() -> dict[str, tuple]:
    """rosbags definitions of every type of :data:`CUSTOM_PACKAGES` that is found
    (installed or in the source tree); empty when neither is there."""
    types: dict[str, tuple] = {}
    for package in CUSTOM_PACKAGES:
        folder = package_dir(package)
        if folder is None:
            continue
        for name, text in _definitions(package, folder):
            # Unqualified names in a .srv / .action mean the package's msg/ types:
            # parse under msg/, then file the type under its own name.
            pkg, _, leaf = name.split("/")
            parsed = get_types_from_msg(text, f"{pkg}/msg/{leaf}")
            parsed[name] = parsed.pop(f"{pkg}/msg/{leaf}")
            types.update(parsed)
    return types


def register_custom_types(store: Typestore) -> Typestore:
    """Add :func:`custom_types` (those it lacks) to ``store``; returns it."""
    missing = {k: v for k, v in custom_types().items() if k not in store.fielddefs}
    if missing:
        store.register(missing)
    return store


def typestore(distro: Stores = Stores.ROS2_KILTED) -> Typestore:
    """A fresh rosbags type store: ``distro``'s standard types plus the custom ones."""
    return register_custom_types(get_typestore(distro))


#: rosbags' base type names -> IDL's.
_IDL_BASE = {"bool": "boolean", "byte": "octet", "char": "uint8", "float32": "float",
             "float64": "double"}  # fmt: skip
_IDL_SEP = "=" * 80 + "\n"


def _idl_type(desc: tuple) -> str:
    kind, arg = desc
    if kind == Nodetype.BASE:
        name, bound = arg
        name = _IDL_BASE.get(name, name)
        return f"{name}<{bound}>" if name == "string" and bound else name
    if kind == Nodetype.NAME:
        return arg.replace("/", "::")
    inner, bound = arg  # a sequence (arrays are written on the field name)
    return f"sequence<{_idl_type(inner)}, {bound}>" if bound else f"sequence<{_idl_type(inner)}>"


def _idl_literal(typ: str, value: object) -> str:
    if typ == "string":
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if typ == "bool":
        return "TRUE" if value else "FALSE"
    return repr(value)


def _idl(store: Typestore, name: str) -> str:
    """One type as an IDL file (what rosidl_adapter generates, less comments)."""
    pkg, kind, leaf = name.split("/")
    consts, fields = store.fielddefs[name]
    lines = [f"module {pkg} {{", f"  module {kind} {{"]
    if consts:
        lines.append(f"    module {leaf}_Constants {{")
        for cname, ctype, value in consts:
            idl = _IDL_BASE.get(ctype, ctype)
            lines.append(f"      const {idl} {cname} = {_idl_literal(ctype, value)};")
        lines.append("    };")
    lines.append(f"    struct {leaf} {{")
    for fname, desc in fields:
        if desc[0] == Nodetype.ARRAY:
            lines.append(f"      {_idl_type(desc[1][0])} {fname}[{desc[1][1]}];")
        else:
            lines.append(f"      {_idl_type(desc)} {fname};")
    lines += ["    };", "  };", "};", ""]
    return "\n".join(lines)


def message_definition(store: Typestore, name: str) -> str:
    """The definition of ``name`` to store in a bag, as rosbag2 writes it: the
    ``ros2msg`` text (the type, then each type it uses after a ``MSG: pkg/Name``
    line) for message types; for the parts of an action or a service (an
    action feedback topic's ``pkg/action/RunSkill_FeedbackMessage``), which
    ``pkg/Name`` cannot name, ``ros2idl``: one ``IDL: pkg/kind/Name`` section per
    type used. rosbags, Foxglove and rosbag2 read both."""
    todo, used = [name], []
    while todo:
        current = todo.pop(0)
        if current not in used:
            used.append(current)
            todo.extend(sorted(referenced_types(store.fielddefs[current][1])))
    if all(t.split("/")[1] == "msg" for t in used):
        return store.generate_msgdef(name, ros_version=2)[0]
    return "".join(f"{_IDL_SEP}IDL: {t}\n{_idl(store, t)}" for t in used)
