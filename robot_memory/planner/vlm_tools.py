"""Memory as tools for the VLM planner (ROS-free, no network).

Instead of a summary of the whole scene graph, the model gets the instruction,
the places, a count of what memory holds, and these tools (OpenAI-compatible
tool calling: ``tools=[{"type": "function", ...}]``); each runs one memory
query through the planner's :class:`~robot_memory.planner.world.MemoryPort`
(``/memory/query`` on the robot) and returns its results as JSON:

* ``find_objects(text, top_k)``: objects ranked by meaning ("mug" finds a cup);
* ``objects_in(target, relation)``: what is in / on a place or an object now;
* ``last_seen(object_id | text)``: where and when an object was last seen;
* ``object_history(object_id)``: its poses and visibility over time;
* ``memory_events(kinds, object_id, target, since, until)``: what happened, and when;
* ``changed_since(since)``: objects added, moved or gone since a time.

Arguments are validated like plans (:class:`ToolCallError` with a short
``reason``): an unknown tool, arguments that are not a JSON object, unknown or
missing fields, wrong types, non-finite numbers, ids out of range. A refused
call is answered to the model with the reason (and counted by the backend);
nothing is queried. Results are cut to ``max_result_chars``.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robot_memory.memory.events import EVENT_KINDS
from robot_memory.planner.world import MemoryPort
from robot_memory.schemas import MemoryQuery

Id = Annotated[int, Field(ge=0, le=2**31 - 1)]
Stamp = Annotated[float, Field(ge=0.0, le=1e10)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class FindObjects(_Args):
    """Objects in memory ranked by how well their label fits the words."""

    text: str = Field(min_length=1, max_length=200, description="e.g. 'red cube', 'mug'")
    top_k: int = Field(default=5, ge=1, le=20)


class ObjectsIn(_Args):
    """What is in or on a place (its id) or an object (its id as text) now."""

    target: str = Field(min_length=1, max_length=100, description="'bin', 'table', '7'")
    relation: Literal["in", "on"] = "in"


class LastSeen(_Args):
    """Where and when an object was last seen (by id, or by words)."""

    object_id: Id | None = None
    text: str = Field(default="", max_length=200)


class ObjectHistory(_Args):
    """An object's poses and visibility intervals over time."""

    object_id: Id


class MemoryEvents(_Args):
    """What memory perceived happening, oldest first; every filter optional."""

    kinds: list[Literal[EVENT_KINDS]] = Field(default_factory=list, max_length=len(EVENT_KINDS))  # type: ignore[valid-type]
    object_id: Id | None = None
    target: str = Field(default="", max_length=100, description="'bin', or an object id as text")
    since: Stamp | None = None
    until: Stamp | None = None


class ChangedSince(_Args):
    """Objects added, moved or gone since a time [s, the robot's clock]."""

    since: Stamp


TOOLS: dict[str, type[_Args]] = {
    "find_objects": FindObjects,
    "objects_in": ObjectsIn,
    "last_seen": LastSeen,
    "object_history": ObjectHistory,
    "memory_events": MemoryEvents,
    "changed_since": ChangedSince,
}


class ToolCallError(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def tool_specs() -> list[dict]:
    """The ``tools`` argument of a chat-completions request."""
    specs = []
    for name, model in TOOLS.items():
        schema = model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        specs.append({"type": "function", "function": {
            "name": name, "description": (model.__doc__ or "").strip(), "parameters": schema,
        }})  # fmt: skip
    return specs


def parse_call(name: object, arguments: object) -> _Args:
    """The validated arguments of one tool call; :class:`ToolCallError` otherwise."""
    if not isinstance(name, str) or name not in TOOLS:
        shown = name if isinstance(name, str) else type(name).__name__
        raise ToolCallError("unknown tool", f"{str(shown)[:60]!r}; the tools are {sorted(TOOLS)}")
    if not isinstance(arguments, str) or len(arguments) > 4000:
        raise ToolCallError(
            "bad arguments", "arguments must be a JSON object of at most 4000 chars"
        )
    try:
        data = json.loads(arguments or "{}", parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ToolCallError("bad arguments", f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(data, dict):
        raise ToolCallError("bad arguments", "arguments must be a JSON object")
    try:
        args = TOOLS[name].model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        raise ToolCallError("bad arguments", f"{name}.{where}: {first['msg']}"[:200]) from None
    if isinstance(args, LastSeen) and args.object_id is None and not args.text.strip():
        raise ToolCallError("bad arguments", "last_seen needs object_id or text")
    window = (args.since, args.until) if isinstance(args, MemoryEvents) else (None, None)
    if None not in window and window[1] < window[0]:  # type: ignore[operator]
        raise ToolCallError("bad arguments", "memory_events: until is before since")
    return args


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def to_query(args: _Args) -> MemoryQuery:
    q = {"id": uuid.uuid4().hex[:16]}
    if isinstance(args, FindObjects):
        return MemoryQuery(**q, kind="find", text=args.text, top_k=args.top_k)
    if isinstance(args, ObjectsIn):
        return MemoryQuery(**q, kind=args.relation, target=args.target)
    if isinstance(args, LastSeen):
        return MemoryQuery(**q, kind="last_seen", object_id=args.object_id, text=args.text)
    if isinstance(args, ObjectHistory):
        return MemoryQuery(**q, kind="history", object_id=args.object_id)
    if isinstance(args, MemoryEvents):
        return MemoryQuery(**q, kind="events", text=" ".join(args.kinds), object_id=args.object_id,
                           target=args.target, since=args.since, until=args.until)  # fmt: skip
    if isinstance(args, ChangedSince):
        return MemoryQuery(**q, kind="changed_since", since=args.since)
    raise ToolCallError("unknown tool", type(args).__name__)


def run_call(args: _Args, memory: MemoryPort, max_result_chars: int = 6000) -> str:
    """The tool's answer to the model: ``{"ok": true, "results": [...]}`` (the newest
    results that fit), or ``{"ok": false, "error": ...}``."""
    answer = memory.query(to_query(args))
    if not answer.ok:
        return json.dumps({"ok": False, "error": answer.error[:300]})
    results = [_rounded(r) for r in answer.results]
    while True:
        cut = len(answer.results) - len(results)
        text = json.dumps({"ok": True, "results": results, "cut": cut}, separators=(",", ":"))
        if len(text) <= max_result_chars or not results:
            return text
        results = results[max(1, len(results) // 4) :]  # keep the newest


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value
