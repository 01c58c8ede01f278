"""The core's validated types, one pydantic model each (ROS-free).

The wire contract is typed (``robot_memory_interfaces``, docs/topics.md). The
node layer (``robot_memory/nodes/*_conversions.py``) turns each typed message,
service request or action goal into the model named after its topic here and
checks it with ``payload_codec.validate_payload``: NaN and infinities, values
out of their bounds, unknown enum values and wrong array lengths are refused as
``invalid payload`` (logged and counted, never a crash) before any state
changes.

JSON is left only where text is the input: an older bag's JSON in
``std_msgs/String``, a VLM's raw plan, and the JSON baseline of
``bench/bench_query.py``. :mod:`robot_memory.payload_codec` decodes
it (``payload too large``, ``malformed json``); the payload models keep
their ``schema_version`` for that form.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # w, x, y, z (MuJoCo order)


#: Longest JSON text a payload may be [characters]: commands and answers. A
#: payload class raises it with ``max_chars`` (scene graphs with 10,000s of
#: objects, ground truth, observation frames).
MAX_PAYLOAD_CHARS = 1 << 20
#: Longest text of the big payloads (a scene graph of 10,000 objects is ~7 MB).
MAX_LARGE_PAYLOAD_CHARS = 64 << 20
#: Deepest nesting accepted where JSON is walked without a model (free-form
#: dicts: answers' results, a VLM's plan). json's own scanner stops at ~1000.
MAX_JSON_DEPTH = 64
#: Largest magnitude of a goal yaw [rad]: two turns either way.
MAX_YAW = 4.0 * math.pi


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: Literal[1] = SCHEMA_VERSION
    #: longest JSON text :func:`parse_payload` accepts for this payload
    max_chars: ClassVar[int] = MAX_PAYLOAD_CHARS
    #: walk the decoded data and refuse nesting deeper than this (None: the
    #: model's own shape bounds it; set where a field is a free-form dict)
    max_depth: ClassVar[int | None] = None


class GroundTruthObject(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: str = Field(description="stable body name in the scene, e.g. 'red_cube'")
    kind: Literal["object", "place"]
    shape: str = Field(description="cube, cylinder, sphere, block, capsule, bin, cover, ...")
    color: str
    label: str = Field(description="the words a person would use, e.g. 'red cube'")
    position: Vec3 = Field(description="centre in the world frame [m]")
    quaternion: Quat
    size: Vec3 = Field(description="axis-aligned extent in the body frame [m]")
    grasp_point: Vec3 | None = Field(
        default=None,
        description="where a top-down grasp closes, world frame [m] (a mug's cup axis, a "
        "screwdriver's handle); None: the centre",
    )
    support: str | None = Field(
        default=None, description="id of what it rests on or in ('table', 'bin', ...)"
    )
    grasped: bool = False


class GroundTruth(Payload):
    """/sim/ground_truth: simulator state, for evaluators only."""

    max_chars: ClassVar[int] = MAX_LARGE_PAYLOAD_CHARS

    stamp: float = Field(description="simulation time [s]")
    episode: int
    seed: int
    scene: str
    objects: list[GroundTruthObject]

    def get(self, object_id: str) -> GroundTruthObject:
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise KeyError(object_id)


class SimReset(Payload):
    """/sim/reset: start a new episode with randomized object placements."""

    seed: int = Field(ge=0, le=2**32 - 1)


class ExpertTask(Payload):
    """/expert/task: ask the scripted expert to move ``object_id`` to ``place_id``."""

    object_id: str = Field(min_length=1, max_length=128)
    place_id: str = Field(min_length=1, max_length=128)

    @field_validator("object_id", "place_id")
    @classmethod
    def _no_spaces(cls, v: str) -> str:
        if v.strip() != v or " " in v:
            raise ValueError("ids contain no spaces")
        return v


class ExpertStatus(Payload):
    """/expert/status: progress of the scripted expert."""

    state: Literal["idle", "running", "succeeded", "failed"]
    object_id: str = ""
    place_id: str = ""
    phase: str = ""
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    reason: str = ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- perception -> memory: /perception/observations -------------------------------
class CameraViewMsg(_Strict):
    """Where the camera was, and a coarse depth image for permanence checks."""

    intrinsics: tuple[float, ...] = Field(
        min_length=9, max_length=9, description="row-major 3x3 K of the coarse depth grid"
    )
    position: Vec3 = Field(description="optical frame origin in the world [m]")
    quaternion: Quat = Field(description="optical frame orientation (w, x, y, z)")
    depth_shape: tuple[int, int] = Field(description="rows, columns of depth_mm")
    depth_mm: list[int] = Field(description="row-major coarse depth in mm, 0 = no return")
    max_range: float = Field(default=2.0, gt=0.0)


class ObservedObjectMsg(_Strict):
    centroid: Vec3
    bbox_min: Vec3
    bbox_max: Vec3
    color: str
    rgb: Vec3 = Field(description="mean colour, 0..1")
    shape: str
    label: str = Field(min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)
    n_points: int = Field(ge=0)
    points: list[Vec3] = Field(default_factory=list, description="a few downsampled points")


class ObservationFrameMsg(Payload):
    """/perception/observations: the objects seen in one camera frame."""

    max_chars: ClassVar[int] = MAX_LARGE_PAYLOAD_CHARS

    camera: str = Field(min_length=1)
    stamp: float = Field(description="time of the images [s]")
    frame_id: Literal["world"] = "world"
    view: CameraViewMsg
    objects: list[ObservedObjectMsg]


# -- memory: /memory/scene_graph ---------------------------------------------------
NodeId = int | str  # objects have integer ids; places have names ("bin", "table_left")


class MemoryObjectMsg(_Strict):
    id: int
    label: str
    color: str
    shape: str
    label_votes: dict[str, float] = Field(default_factory=dict)
    centroid: Vec3
    bbox_min: Vec3
    bbox_max: Vec3
    confidence: float = Field(ge=0.0, le=1.0)
    observations: int = Field(ge=0)
    first_seen: float
    last_seen: float
    last_camera: str = ""
    status: Literal["visible", "remembered", "absent"] = Field(
        description="seen in the latest frame; not seen but believed there; evidence says gone"
    )
    container: bool = Field(default=False, description="a box, lid or bin: other things go in it")
    yaw: float | None = Field(
        default=None,
        ge=-3.2,
        le=3.2,
        description="hand yaw of a top-down grasp across the narrow side [rad], in "
        "[-pi/2, pi/2) (a cube: [-pi/4, pi/4)); None: unknown or round "
        "(robot_memory.memory.orientation.grasp_yaw gives 0.0 then)",
    )
    grasp_point: Vec3 | None = Field(
        default=None,
        description="where a top-down grasp closes [m], world frame: the thickest part of "
        "the footprint (a mug's cup, a screwdriver's handle; "
        "robot_memory.memory.grasp_point); None: the centroid",
    )


class PlaceMsg(_Strict):
    id: str
    kind: str = Field(description="table_region, container, ...")
    label: str
    bbox_min: Vec3
    bbox_max: Vec3


class RelationMsg(_Strict):
    subject: NodeId
    relation: Literal["on", "in", "near"]
    target: NodeId
    confidence: float = Field(ge=0.0, le=1.0)
    first_confirmed: float
    last_confirmed: float


class SceneGraphMsg(Payload):
    """/memory/scene_graph: the whole remembered scene (transient local)."""

    max_chars: ClassVar[int] = MAX_LARGE_PAYLOAD_CHARS

    seq: int = Field(ge=0, description="increases by one with every publication")
    stamp: float = Field(description="time of the latest observation folded in [s]")
    objects: list[MemoryObjectMsg]
    places: list[PlaceMsg]
    relations: list[RelationMsg]


# -- memory queries: the /memory/query service (QueryMemory) -----------------------
QueryKind = Literal[
    "find",
    "last_seen",
    "history",
    "on",
    "in",
    "changed_since",
    "relation_history",
    "events",
    "graph",
]


class MemoryQuery(Payload):
    """A question to memory. ``id`` is echoed in the answer.

    * ``find``: ``text`` ("mug", "red thing") -> objects ranked by similarity;
    * ``last_seen``: ``object_id`` or ``text`` -> where and when it was last seen;
    * ``history``: ``object_id`` -> pose history and visibility intervals;
    * ``on`` / ``in``: ``target`` (a place name, an object id or text) -> what is on / in it;
    * ``changed_since``: ``since`` [s] -> objects added, moved or gone since then;
    * ``relation_history``: what was (and is) on / in what, and when. Every
      relation memory confirmed that has since ended (the cover was lifted off,
      the cube left the bin, an end left memory), plus the current ones with
      ``ended`` None; newest first (current first). Optional filters, all
      combined: ``object_id`` (as subject or target); ``target`` (resolved like
      ``on``/``in``: a place, "table", an object id or text; an id or label
      only the history still knows works too); ``text`` = relation names ("in",
      "on", "in on"; empty: the kinds memory records, ``in`` and ``on`` by
      default); ``since`` [s] (ended at or after it, or still active). Each
      result: ``subject``, ``relation``, ``target``, ``confidence``,
      ``first_confirmed``, ``last_confirmed``, ``ended``, ``subject_label``,
      ``target_label`` (labels as they were when it ended);
    * ``events``: what happened, as memory perceived it (``memory/events.py``:
      appeared, disappeared, moved, put_in, taken_out, covered, uncovered,
      session_started), oldest first, the newest ``MAX_EVENT_RESULTS`` of those
      matching every filter given: ``text`` = event kinds ("moved put_in");
      ``object_id`` (the object, or the container of a put_in/covered);
      ``target`` (resolved like ``on``/``in``); ``since`` / ``until`` [s];
    * ``graph``: the current scene graph.
    """

    id: str = Field(min_length=1, max_length=128)
    kind: QueryKind
    text: str = Field(default="", max_length=512)
    object_id: int | None = None
    target: str = Field(default="", max_length=128)
    since: float | None = None
    until: float | None = None
    top_k: int = Field(default=5, ge=1, le=100)


class MemoryAnswer(Payload):
    """The answer of ``/memory/query`` (a ``QueryMemory`` response, converted).
    ``ok`` false carries ``error``; ``results`` is kind-specific
    (free-form: nesting is bounded by ``max_depth``)."""

    max_chars: ClassVar[int] = MAX_LARGE_PAYLOAD_CHARS
    max_depth: ClassVar[int | None] = MAX_JSON_DEPTH

    id: str
    kind: str
    ok: bool
    error: str = ""
    stamp: float = 0.0
    results: list[dict] = Field(default_factory=list)


# -- policy: the /policy/run_skill action (RunSkill) -> /policy/status -------------
class PolicyGoalMsg(Payload):
    """A ``/policy/run_skill`` goal (``RunSkill``; ``id``: over the action, the
    goal's UUID in hex): one skill for the policy node, grounded in memory.

    * ``pick``: ``object_id`` (memory object id) -> its centroid in the latest
      scene graph;
    * ``place``: ``target`` = a place id ("bin", "table_left") or a memory
      object id as text -> the top centre of its box;
    * ``target_position`` [m, table frame], when given, wins over both;
    * ``look``: point the wrist camera down at ``target`` (a place id or an
      object id as text), ``object_id`` or ``target_position`` (scripted IK
      motion, not the diffusion policy), so memory sees it again;
    * ``goal_yaw`` [rad]: hand yaw; default 0.0 for pick, the current hand yaw
      for place.

    A new valid goal pre-empts the running one; an invalid one ends at once,
    result state ``rejected`` with the reason, and nothing runs.
    """

    id: str = Field(min_length=1, max_length=128)
    skill: Literal["pick", "place", "look"]
    object_id: int | None = None
    target: str = Field(default="", max_length=128)
    target_position: Vec3 | None = Field(
        default=None, description="[m, table frame]; must lie in the cell's workspace"
    )
    goal_yaw: float | None = Field(default=None, ge=-MAX_YAW, le=MAX_YAW)


class PolicyStatusMsg(Payload):
    """/policy/status (latched): the skill's state, with the reason when it ended."""

    goal_id: str = ""
    state: Literal["idle", "running", "succeeded", "failed", "canceled"]
    reason: str = ""
    skill: str = ""
    object_id: int | None = Field(default=None, description="the goal's memory object")
    target: str = Field(default="", max_length=128, description="the goal's place or object")
    chunks: int = Field(default=0, ge=0, description="action chunks published for the goal")
    stamp: float = Field(default=0.0, description="node time of this status [s]")


class PayloadError(ValueError):
    """A JSON payload that failed validation; ``reason`` is short and loggable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
