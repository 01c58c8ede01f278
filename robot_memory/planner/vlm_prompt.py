"""What the VLM planner sends and how its answer is read (ROS-free, no network).

* :func:`build_messages`: the chat messages: a system prompt with the skills
  whitelist and the rules, then one user message with the instruction, the hand,
  the places, a compact scene-graph summary (:meth:`World.summary`), retrieved
  experiences (:meth:`Experience.as_prompt_line`) and, optionally, the camera
  image as a base64 data URL (an ``image_url`` content part).
* :func:`plan_schema`: the JSON schema for ``response_format`` (strict): only the
  whitelisted skills, ``object_id`` from an enum of the ids memory holds,
  ``target`` from the place ids and those ids as text.
* :func:`read_plan`: the model's text -> a :class:`Plan`, with
  :func:`~robot_memory.planner.validation.parse_plan` semantics; every problem
  (truncated, not JSON, extra fields, unknown skill) is a
  :class:`PlanValidationError` with a short reason. The text is only ever
  parsed as JSON data: nothing in it is executed.
"""

from __future__ import annotations

import json

from robot_memory.planner.plan import MAX_STEPS, SKILLS, Plan
from robot_memory.planner.validation import PlanValidationError, decode_plan_json, parse_plan
from robot_memory.planner.world import PlanningContext, World

#: Fields the model may write; everything else (id, backend, ...) is ours.
PLAN_FIELDS = ("kind", "steps", "answer", "answer_object_id", "answer_place", "notes")
STEP_FIELDS = ("skill", "object_id", "target", "target_position", "goal_yaw", "why")

SYSTEM_PROMPT = f"""You are the task planner of a robot arm at a table.
You turn one instruction into a plan of whitelisted skills, grounded in the robot's memory.

Skills (the only ones that exist): {", ".join(SKILLS)}.
- pick: object_id (required) - grasp that object. The hand must be empty.
- place: object_id (the held object, required) and target (a place id, or an object id as
  text, e.g. "7") or target_position [x, y, z] in metres - put the held object there.
- look: target (place id or object id text) or object_id - point the camera there so memory
  sees it again.

Rules:
- Use only object ids and place ids listed in the scene. Never invent ids.
- Objects with status "absent" are gone: do not pick or place them.
- Objects "in" a container object (a cover) cannot be picked.
- Pick one object at a time; every pick is followed by a place; end with the hand empty.
- At most {MAX_STEPS} steps. Keep "why" to one short line.
- A question ("where is ...?") gets kind "answer": no steps, the answer in "answer",
  the object id in "answer_object_id" and the place id in "answer_place" when known.
- Reply with one JSON object only, no prose, no code: {{"kind": "motion" or "answer",
  "steps": [{{"skill", "object_id", "target", "target_position", "goal_yaw", "why"}}],
  "answer", "answer_object_id", "answer_place", "notes"}}. Use null for unused fields.
"""


def _ids(world: World) -> list[int]:
    """Object ids a plan may name: everything memory holds that is not gone."""
    return sorted(o.id for o in world.graph.objects if o.status != "absent")


def plan_schema(world: World) -> dict:
    """JSON schema of the model's answer for this world (strict-mode compatible:
    every property required, no additional properties, null for unused)."""
    ids: list[int | None] = [*_ids(world), None]
    places = sorted(world.places)
    targets: list[str | None] = [*places, *(str(i) for i in _ids(world)), "", None]
    step = {
        "type": "object",
        "additionalProperties": False,
        "required": list(STEP_FIELDS),
        "properties": {
            "skill": {"type": "string", "enum": list(SKILLS)},
            "object_id": {"type": ["integer", "null"], "enum": ids},
            "target": {"type": ["string", "null"], "enum": targets},
            "target_position": {
                "anyOf": [
                    {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                    {"type": "null"},
                ]
            },
            "goal_yaw": {"type": ["number", "null"]},
            "why": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(PLAN_FIELDS),
        "properties": {
            "kind": {"type": "string", "enum": ["motion", "answer"]},
            "steps": {"type": "array", "items": step, "maxItems": MAX_STEPS},
            "answer": {"type": "string"},
            "answer_object_id": {"type": ["integer", "null"], "enum": ids},
            "answer_place": {"type": ["string", "null"], "enum": [*places, "", None]},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }


def response_format(world: World, mode: str) -> dict | None:
    """The ``response_format`` argument for ``mode`` (json_schema, json_object, none)."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "plan", "strict": True, "schema": plan_schema(world)},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def scene_text(ctx: PlanningContext, max_objects: int = 40, brief: bool = False) -> str:
    """The user message's text: instruction, hand, places, objects (``brief``:
    only how many, and the time now), experiences."""
    world = ctx.world
    hand = "empty" if ctx.held is None else f"holding object {ctx.held}"
    places = [{"id": p.id, "kind": p.kind, "label": p.label} for p in world.graph.places]
    lines = [
        f"Instruction: {ctx.instruction}",
        f"Hand: {hand}",
        f"Places: {json.dumps(places, separators=(',', ':'))}",
    ]
    if brief:
        present = sum(o.status != "absent" for o in world.graph.objects)
        lines.append(f"Memory holds {present} objects now; the time is {world.stamp:.1f} s.")
    else:
        lines += [
            "Objects in memory (id, label, status, container, position [m], last_seen [s], "
            "relations):",
            json.dumps(world.summary(max_objects=max_objects), separators=(",", ":")),
        ]
    if ctx.experiences:
        lines.append("Lessons from past failures (apply them where they fit):")
        for e in ctx.experiences:
            line = e.as_prompt_line() if hasattr(e, "as_prompt_line") else f"- {e}"
            lines.append(line[:400])
    lines.append("Reply with the plan as one JSON object.")
    return "\n".join(lines)


TOOLS_PROMPT = """
Memory tools: the scene below lists the places only. Call the tools (find_objects,
objects_in, last_seen, object_history, memory_events, changed_since) to learn the
objects' ids, where they are and what happened, then reply with the plan. Use only
ids the tools returned. Times are seconds of the robot's clock; "now" is given.
"""


def build_messages(
    ctx: PlanningContext, image_url: str | None = None, memory_tools: bool = False
) -> list[dict]:
    """System + user messages; the image (a data URL) as a content part when given.
    ``memory_tools``: no object list (the model asks memory through tools)."""
    text = scene_text(ctx, brief=memory_tools)
    if image_url is None:
        user: dict = {"role": "user", "content": text}
    else:
        user = {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": image_url}},
            ],
        }
    system = SYSTEM_PROMPT + (TOOLS_PROMPT if memory_tools else "")
    return [{"role": "system", "content": system}, user]


def retry_message(reason: str) -> dict:
    """The message after a rejected answer: why, and what to send instead."""
    return {
        "role": "user",
        "content": (
            f"Your plan was rejected: {reason}. Send a corrected plan as one JSON object "
            "with only the whitelisted skills and ids from the scene; nothing else."
        ),
    }


def _strip_fence(text: str) -> str:
    """Models without JSON mode often wrap JSON in a ``` fence; take what is inside."""
    t = text.strip()
    if t.startswith("```") and t.endswith("```") and len(t) >= 6:
        t = t[3:-3]
        if t.startswith("json"):
            t = t[4:]
    return t.strip()


def read_plan(
    content: str | None, finish_reason: str | None, *, plan_id: str, ctx: PlanningContext
) -> Plan:
    """The model's answer -> an (unvalidated) Plan; raise PlanValidationError on anything
    but a clean JSON plan of the allowed fields."""
    if finish_reason == "length":
        raise PlanValidationError("truncated output", "the answer hit max_tokens")
    if not content or not content.strip():
        raise PlanValidationError("empty output", f"finish_reason={finish_reason!r}")
    data = decode_plan_json(_strip_fence(content))  # size, nesting, huge ints: "malformed json"
    if not isinstance(data, dict):
        raise PlanValidationError("malformed json", "a plan is a JSON object")
    extra = sorted(set(data) - set(PLAN_FIELDS))
    if extra:
        raise PlanValidationError("extra field", f"not a plan field: {extra[:5]}")
    steps = data.get("steps")
    if isinstance(steps, list):
        for i, step in enumerate(steps):
            if isinstance(step, dict):
                extra = sorted(set(step) - set(STEP_FIELDS))
                if extra:
                    raise PlanValidationError("extra field", f"not a step field: {extra[:5]}", i)
                steps[i] = {k: v for k, v in step.items() if v is not None}
    fields = {k: v for k, v in data.items() if v is not None}
    fields.update(
        id=plan_id,
        instruction=ctx.instruction[:1000],
        backend="vlm",
        experiences=[str(getattr(e, "id", e)) for e in ctx.experiences][:50],
    )
    return parse_plan(fields)


__all__ = [
    "SYSTEM_PROMPT",
    "build_messages",
    "plan_schema",
    "read_plan",
    "response_format",
    "retry_message",
    "scene_text",
]
