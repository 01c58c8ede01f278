"""JSON payloads carried in std_msgs/String, one pydantic model each.

Every payload has a ``schema_version``; receivers validate with
:func:`parse_payload` and reject (log + count) anything that fails, never crash.
Keep these small and documented: they are the candidates for real .msg files
once custom interfaces can be built (docs/topics.md).
"""

from __future__ import annotations

import json
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # w, x, y, z (MuJoCo order)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: Literal[1] = SCHEMA_VERSION


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
    support: str | None = Field(
        default=None, description="id of what it rests on or in ('table', 'bin', ...)"
    )
    grasped: bool = False


class GroundTruth(Payload):
    """/sim/ground_truth: simulator state, for evaluators only."""

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

    seed: int = Field(ge=0)


class ExpertTask(Payload):
    """/expert/task: ask the scripted expert to move ``object_id`` to ``place_id``."""

    object_id: str = Field(min_length=1)
    place_id: str = Field(min_length=1)

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


P = TypeVar("P", bound=Payload)


class PayloadError(ValueError):
    """A JSON payload that failed validation; ``reason`` is short and loggable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def parse_payload(model: type[P], text: str) -> P:
    """Validate ``text`` as ``model``; raise :class:`PayloadError` on any problem."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise PayloadError("malformed json", str(exc)) from exc
    if not isinstance(data, dict):
        raise PayloadError("malformed json", "top level must be an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise PayloadError("invalid payload", f"{where}: {first['msg']}") from exc


def dump_payload(payload: Payload) -> str:
    return payload.model_dump_json()
