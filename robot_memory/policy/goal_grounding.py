"""Ground a policy goal (a ``/policy/run_skill`` goal) in the remembered scene (ROS-free).

The planner names things by their memory ids; the policy is conditioned on a
position. This module turns one into the other over the latest
:class:`~robot_memory.schemas.SceneGraphMsg`:

* ``pick``: ``object_id`` -> that object's grasp point (the thickest part of
  its footprint, ``memory/grasp_point.py``; the centroid when memory has
  none), slid along a handle or a box, and the hand turned across a handle,
  where a remembered neighbour stands where a finger would come down
  (``policy/grasp_clearance.py``). Refused when there is no scene graph yet,
  the id is unknown, or memory holds the object as ``absent``.
* ``place``: ``target`` is a place id or a memory object id (as text):

  - a container place (the bin) or any non-table place: the top centre of its
    box (the release height is added by the skill, ``RELEASE_TCP_HEIGHT``);
  - a table region: its centre xy, clipped into the reachable table area the
    demonstrations covered (``TABLE_PLACE_X``, ``TABLE_PLACE_Y``), at the
    region's top. Pick a free spot yourself and pass ``target_position`` when
    the centre may be occupied: nothing here checks for clearance;
  - a memory object (e.g. a box): the top centre of its box.

* ``target_position``, when given, always wins (no lookup, no graph needed).
* every target (given or from memory) must be finite and inside the cell's
  workspace box (``config/cell_tabletop.json``: nothing below the table, out
  of reach or above 0.3 m): "target out of workspace" otherwise; ``goal_yaw``
  is bounded by the payload itself (|yaw| <= 4 pi, finite).
* ``goal_yaw``: the given one, else 0.0 for pick (the home hand yaw: memory
  stores no object orientation yet, so the grasp axis is not known), else the
  current hand yaw for place (carry the object without turning it).

Every refusal is a :class:`GroundingError` with a short, stable ``reason``
(diagnostics count by it) and a ``detail`` for the log and the status.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from robot_memory.cell import Box, load_cell
from robot_memory.memory.grasp_point import ROUND_WORDS
from robot_memory.payload_codec import parse_payload, payload_id
from robot_memory.policy.grasp_clearance import GRASP_FREEDOM, Footprint, clear_grasp
from robot_memory.policy.skill_goal import TABLE_PLACE_X, TABLE_PLACE_Y, SkillGoal
from robot_memory.robot.panda import GRIPPER_MAX_WIDTH
from robot_memory.schemas import (
    MemoryObjectMsg,
    PayloadError,
    PlaceMsg,
    PolicyGoalMsg,
    SceneGraphMsg,
)

#: Grasp yaw used for a pick when the goal gives none [rad] (see module doc).
DEFAULT_PICK_YAW = 0.0


class GroundingError(ValueError):
    """A goal that cannot be turned into a SkillGoal."""

    def __init__(self, reason: str, detail: str = "", goal_id: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.goal_id = goal_id


def goal_id_of(text: str) -> str:
    """Best-effort ``id`` of a goal payload that may not validate (for the status)."""
    return payload_id(text)


@lru_cache(maxsize=1)
def default_workspace() -> Box:
    """The shipped cell's workspace box (world = table frame)."""
    return load_cell().workspace


def check_target(point: np.ndarray, what: str, workspace: Box | None = None) -> np.ndarray:
    """``point`` if finite and inside ``workspace`` (default: the shipped cell's),
    else GroundingError "target out of workspace"."""
    box = workspace if workspace is not None else default_workspace()
    p = np.asarray(point, dtype=float)
    if p.shape != (3,) or not np.all(np.isfinite(p)) or not bool(box.contains(p)[0]):
        lo, hi = np.round(box.bbox_min, 3).tolist(), np.round(box.bbox_max, 3).tolist()
        raise GroundingError(
            "target out of workspace", f"{what} at {np.round(p, 3).tolist()} not in {lo}..{hi}"
        )
    return p


def parse_goal(text: str) -> PolicyGoalMsg:
    """Validate a skill goal given as JSON text (the form of the retired
    ``/policy/goal`` topic); raises GroundingError."""
    try:
        return parse_payload(PolicyGoalMsg, text)
    except PayloadError as err:
        raise GroundingError(err.reason, err.detail, goal_id_of(text)) from err


def find_object(graph: SceneGraphMsg, object_id: int) -> MemoryObjectMsg:
    for obj in graph.objects:
        if obj.id == object_id:
            return obj
    raise GroundingError("unknown object", f"memory holds no object {object_id}")


def find_place(graph: SceneGraphMsg, place_id: str) -> PlaceMsg | None:
    for place in graph.places:
        if place.id == place_id:
            return place
    return None


def _present(obj: MemoryObjectMsg) -> MemoryObjectMsg:
    if obj.status == "absent":
        raise GroundingError(
            "object absent", f"object {obj.id} ({obj.label}) is remembered as gone"
        )
    return obj


def top_centre(bbox_min, bbox_max) -> np.ndarray:
    lo, hi = np.asarray(bbox_min, dtype=float), np.asarray(bbox_max, dtype=float)
    return np.array([(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0, hi[2]])


def place_point(place: PlaceMsg) -> np.ndarray:
    """Where to put something down on/in ``place`` (see the module doc)."""
    point = top_centre(place.bbox_min, place.bbox_max)
    if place.kind == "table_region":
        point[0] = np.clip(point[0], *TABLE_PLACE_X)
        point[1] = np.clip(point[1], *TABLE_PLACE_Y)
    return point


def pick_target(goal: PolicyGoalMsg, graph: SceneGraphMsg | None) -> tuple[np.ndarray, float, str]:
    """(target position, hand yaw, object id text) of a pick: a remembered
    object's grasp point kept clear of its neighbours (:func:`clear_pick`)."""
    object_text = "" if goal.object_id is None else str(goal.object_id)
    yaw = DEFAULT_PICK_YAW if goal.goal_yaw is None else goal.goal_yaw
    if goal.target_position is not None:
        return np.asarray(goal.target_position, dtype=float), yaw, object_text
    if goal.object_id is None:
        raise GroundingError("no target", "pick needs object_id or target_position")
    if graph is None:
        raise GroundingError("no scene graph", "no /memory/scene_graph received yet")
    obj = _present(find_object(graph, goal.object_id))
    target = np.asarray(obj.grasp_point or obj.centroid, dtype=float)
    return *clear_pick(obj, graph, target, yaw), object_text


def memory_footprint(obj: MemoryObjectMsg) -> Footprint:
    """A remembered object's footprint: its box (axis-aligned: memory keeps no
    object rotation), or the circle in it for round things."""
    lo, hi = np.asarray(obj.bbox_min, dtype=float), np.asarray(obj.bbox_max, dtype=float)
    centre, half = (lo[:2] + hi[:2]) / 2.0, (hi[:2] - lo[:2]) / 2.0
    if obj.shape in ROUND_WORDS:
        return Footprint((float(centre[0]), float(centre[1])), radius=float(half.max()))
    return Footprint((float(centre[0]), float(centre[1])), half=(float(half[0]), float(half[1])))


def clear_pick(
    obj: MemoryObjectMsg, graph: SceneGraphMsg, target: np.ndarray, yaw: float
) -> tuple[np.ndarray, float]:
    """``target`` and ``yaw`` moved along ``obj`` (a handle, a box) where a
    remembered neighbour stands where a finger would come down
    (:func:`~robot_memory.policy.grasp_clearance.clear_grasp`)."""
    slide, turn = GRASP_FREEDOM.get(obj.shape, (0.0, 0.0))
    others = [memory_footprint(o) for o in graph.objects if o.id != obj.id and o.status != "absent"]
    if (slide <= 0 and turn <= 0) or not others:
        return target, yaw
    chosen = clear_grasp(target, yaw, others, GRIPPER_MAX_WIDTH, slide, turn)
    return np.array([chosen.point[0], chosen.point[1], target[2]]), chosen.yaw


def place_target(goal: PolicyGoalMsg, graph: SceneGraphMsg | None) -> np.ndarray:
    if goal.target_position is not None:
        return np.asarray(goal.target_position, dtype=float)
    if not goal.target:
        raise GroundingError("no target", "place needs target or target_position")
    if graph is None:
        raise GroundingError("no scene graph", "no /memory/scene_graph received yet")
    place = find_place(graph, goal.target)
    if place is not None:
        return place_point(place)
    try:
        object_id = int(goal.target)
    except ValueError:
        known = ", ".join(p.id for p in graph.places) or "none"
        raise GroundingError(
            "unknown target", f"{goal.target!r} is no place (places: {known}) nor an object id"
        ) from None
    obj = _present(find_object(graph, object_id))
    return top_centre(obj.bbox_min, obj.bbox_max)


def ground_goal(
    goal: PolicyGoalMsg, graph: SceneGraphMsg | None, hand_yaw: float | None = None
) -> SkillGoal:
    """The policy's SkillGoal for ``goal`` over the latest scene ``graph``.

    ``hand_yaw`` is the current hand yaw [rad]; a place without ``goal_yaw``
    needs it (GroundingError "no robot state" when None)."""
    try:
        if goal.skill == "pick":
            target, yaw, object_text = pick_target(goal, graph)
            check_target(target, "pick target")
            return SkillGoal("pick", target, yaw, object_text, object_rest_z=float(target[2]))
        target = check_target(place_target(goal, graph), "place target")
        if goal.goal_yaw is not None:
            yaw = goal.goal_yaw
        elif hand_yaw is not None and np.isfinite(hand_yaw):
            yaw = float(hand_yaw)
        else:
            raise GroundingError("no robot state", "place without goal_yaw needs the hand yaw")
        object_text = "" if goal.object_id is None else str(goal.object_id)
        return SkillGoal("place", target, yaw, object_text, goal.target)
    except GroundingError as err:
        err.goal_id = goal.id
        raise
    except ValueError as err:  # SkillGoal's own checks (non-finite values)
        raise GroundingError("invalid goal", str(err), goal.id) from err


def ground_goal_text(
    text: str, graph: SceneGraphMsg | None, hand_yaw: float | None = None
) -> tuple[PolicyGoalMsg, SkillGoal]:
    """Parse and ground a skill goal given as JSON text in one step."""
    goal = parse_goal(text)
    return goal, ground_goal(goal, graph, hand_yaw)


__all__ = [
    "DEFAULT_PICK_YAW",
    "GroundingError",
    "check_target",
    "goal_id_of",
    "ground_goal",
    "ground_goal_text",
    "parse_goal",
    "place_point",
    "top_centre",
]
