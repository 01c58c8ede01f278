"""One remembered object: fused geometry, label votes, confidence, history (ROS-free)."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import numpy as np

from robot_memory.memory.colours import ACHROMATIC, same_colour
from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.grasp_point import ROUND_WORDS, estimate_grasp_point
from robot_memory.memory.orientation import estimate_yaw, footprint
from robot_memory.memory.shapes import shapes_agree
from robot_memory.perception.observations import ObjectObservation
from robot_memory.schemas import MemoryObjectMsg

CONTAINER_NOUNS = frozenset({"box", "cover", "lid", "bin"})
#: A container's box is at least this wide on both sides: room for an object [m].
MIN_CONTAINER_SIDE = 0.065
#: ... and at least this tall (room for an object under it): the 9 cm cover
#: is; the household's closed boxes (4.5 and 6 cm) are not, even when a view
#: of the cover's wall beside one widens its footprint [m].
MIN_CONTAINER_HEIGHT = 0.07
STATUSES = ("visible", "remembered", "absent")


@functools.lru_cache(maxsize=4096)
def is_container_label(label: str) -> bool:
    words = label.lower().split()
    return bool(words) and words[-1] in CONTAINER_NOUNS


def voxel_downsample(points: np.ndarray, voxel: float, cap: int) -> np.ndarray:
    """One point per ``voxel`` cube (the first one), then at most ``cap`` evenly strided."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return pts
    keys = np.floor(pts / voxel).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1  # one integer per cube: a 1-D unique instead of rows
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, first = np.unique(flat, return_index=True)
    pts = pts[np.sort(first)]
    if len(pts) > cap:
        pts = pts[np.linspace(0, len(pts) - 1, cap).astype(int)]
    return pts


def box_iou(a_min: np.ndarray, a_max: np.ndarray, b_min: np.ndarray, b_max: np.ndarray) -> float:
    inter = np.clip(np.minimum(a_max, b_max) - np.maximum(a_min, b_min), 0.0, None)
    vi = float(np.prod(inter))
    va = float(np.prod(np.clip(a_max - a_min, 0.0, None)))
    vb = float(np.prod(np.clip(b_max - b_min, 0.0, None)))
    union = va + vb - vi
    return vi / union if union > 0 else 0.0


def box_inside(a: MemoryObject, b: MemoryObject) -> float:
    """The fraction of the smaller of two boxes inside the other."""
    inter = np.clip(
        np.minimum(a.bbox_max, b.bbox_max) - np.maximum(a.bbox_min, b.bbox_min), 0, None
    )
    smaller = min(
        float(np.prod(np.clip(a.bbox_max - a.bbox_min, 1e-9, None))),
        float(np.prod(np.clip(b.bbox_max - b.bbox_min, 1e-9, None))),
    )
    return float(np.prod(inter)) / smaller


def _best(votes: dict[str, float], default: str = "") -> str:
    return max(votes.items(), key=lambda kv: kv[1])[0] if votes else default


@dataclass
class MemoryObject:
    id: int
    label_votes: dict[str, float]
    color_votes: dict[str, float]
    shape_votes: dict[str, float]
    rgb: tuple[float, float, float]
    centroid: np.ndarray
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    points: np.ndarray  # (n, 3) float32, voxel-downsampled and capped
    observations: int
    confidence: float
    status: str  # visible | remembered | absent
    first_seen: float
    last_seen: float
    last_camera: str
    fusion_weight: float = 0.0  # accumulated observation confidence
    visibility: list[list[float]] = field(default_factory=list)  # [[start, end], ...]
    absence_evidence: int = 0
    absent_since: float | None = None
    pose_history: list[tuple[float, tuple[float, float, float]]] = field(default_factory=list)
    merged_into: int | None = None
    _yaw: tuple[float | None] | None = field(default=None, repr=False, compare=False)  # cache
    _grasp: tuple[tuple[float, float, float] | None] | None = field(
        default=None, repr=False, compare=False
    )  # cache
    _narrow: float | None = field(default=None, repr=False, compare=False)  # cache
    #: (label, colour, shape) from the votes, cached: queries read them for every
    #: object; fuse() and absorb(), the only writers of the votes, clear it
    _words: tuple[str, str, str] | None = field(default=None, repr=False, compare=False)

    # -- derived -----------------------------------------------------------------
    @property
    def words(self) -> tuple[str, str, str]:
        """(label, colour, shape): each the word with the most votes."""
        if self._words is None:
            self._words = (_best(self.label_votes), _best(self.color_votes),
                           _best(self.shape_votes))  # fmt: skip
        return self._words

    @property
    def label(self) -> str:
        return self.words[0]

    @property
    def color(self) -> str:
        return self.words[1]

    @property
    def shape(self) -> str:
        return self.words[2]

    @property
    def container(self) -> bool:
        """A box, cover, lid or bin wide enough to hold an object (its
        footprint's narrow side, turned or not): a 5 cm cube the labeller once
        calls a box, or a closed household box, is none."""
        named = is_container_label(self.label) or self.shape in CONTAINER_NOUNS
        tall = float(self.bbox_max[2] - self.bbox_min[2]) >= MIN_CONTAINER_HEIGHT
        return named and tall and self.narrow_side >= MIN_CONTAINER_SIDE

    @property
    def narrow_side(self) -> float:
        """The footprint's narrow side [m]: of the rectangle fitted to the
        points' xy (a 5.8 x 9 cm box turned 45 degrees has a 10.5 cm square
        axis-aligned box), else of the box."""
        if self._narrow is None:
            fit = footprint(self.points) if len(self.points) else None
            box = float(np.min(self.bbox_max[:2] - self.bbox_min[:2]))
            self._narrow = box if fit is None else float(fit[2])
        return self._narrow

    @property
    def size(self) -> np.ndarray:
        return self.bbox_max - self.bbox_min

    @property
    def yaw(self) -> float | None:
        """Grasp hand yaw from the fused points and the shape word (orientation.py),
        estimated when first read after a change."""
        if self._yaw is None:
            self._yaw = (estimate_yaw(self.points, self.shape),)
        return self._yaw[0]

    @property
    def grasp_point(self) -> tuple[float, float, float] | None:
        """Where a top-down grasp closes: the footprint's thickest part
        (grasp_point.py), estimated when first read after a change; None: the centroid."""
        if self._grasp is None:
            round_shape = self.shape in ROUND_WORDS
            self._grasp = (
                estimate_grasp_point(self.points, self.bbox_min, self.bbox_max, round_shape),
            )
        return self._grasp[0]

    def clone(self) -> MemoryObject:
        """A copy sharing nothing mutable (arrays are replaced, never written in place)."""
        twin = copy.copy(self)
        twin.label_votes = dict(self.label_votes)
        twin.color_votes = dict(self.color_votes)
        twin.shape_votes = dict(self.shape_votes)
        twin.visibility = [list(v) for v in self.visibility]
        twin.pose_history = list(self.pose_history)
        return twin

    # -- construction and fusion -------------------------------------------------
    @classmethod
    def from_observation(
        cls, object_id: int, obs: ObjectObservation, config: MemoryConfig
    ) -> MemoryObject:
        w = max(float(obs.confidence), 1e-3)
        obj = cls(
            id=object_id,
            label_votes={obs.label: w},
            color_votes={obs.color: w} if obs.color else {},
            shape_votes={obs.shape: w} if obs.shape else {},
            rgb=tuple(float(c) for c in obs.rgb),  # type: ignore[arg-type]
            centroid=np.asarray(obs.centroid, dtype=float).copy(),
            bbox_min=np.asarray(obs.bbox_min, dtype=float).copy(),
            bbox_max=np.asarray(obs.bbox_max, dtype=float).copy(),
            points=voxel_downsample(obs.points, config.voxel_size, config.max_points_per_object),
            observations=1,
            confidence=float(np.clip(w * config.initial_confidence_scale, 0.0, 1.0)),
            status="visible",
            first_seen=obs.stamp,
            last_seen=obs.stamp,
            last_camera=obs.camera,
            fusion_weight=w,
        )
        obj.visibility.append([obs.stamp, obs.stamp])
        obj.pose_history.append((obs.stamp, _xyz(obj.centroid)))
        return obj

    def fuse(
        self,
        obs: ObjectObservation,
        config: MemoryConfig,
        relocate: bool = False,
        merged_view: bool = False,
    ) -> None:
        """Fold one sighting in. A sighting beyond ``move_threshold`` from the
        fused centroid (or a relocation) replaces the geometry: the object moved.
        A ``merged_view`` (this object and a neighbour seen as one) counts as a
        partial view: it confirms the object, it does not reshape it."""
        w = max(float(obs.confidence), 1e-3)
        centroid = np.asarray(obs.centroid, dtype=float)
        # Words from a view that covers more of the object count more (up to 4x
        # a view the size of the fused box): a capsule cut in half by the image
        # edge looks like a sphere, the whole capsule does not.
        coverage = 1.0 if relocate else float(np.clip(_volume(obs) / _volume(self), 0.0, 4.0))
        partial = not relocate and (merged_view or self.is_partial_view(obs, config))
        if partial:
            w *= config.partial_view_weight  # its shape word and box are unreliable
        moved = (
            relocate or float(np.linalg.norm(centroid - self.centroid)) > 2 * config.move_threshold
        )
        if partial:
            pass  # a partial view confirms the object is there; it does not move it
        elif moved:
            self.centroid = centroid.copy()
            self.bbox_min = np.asarray(obs.bbox_min, dtype=float).copy()
            self.bbox_max = np.asarray(obs.bbox_max, dtype=float).copy()
            self.points = voxel_downsample(
                obs.points, config.voxel_size, config.max_points_per_object
            )
            self.fusion_weight = w
        else:
            alpha = max(w / (self.fusion_weight + w), config.min_fusion_weight)
            self.centroid = (1 - alpha) * self.centroid + alpha * centroid
            self.bbox_min = (1 - alpha) * self.bbox_min + alpha * np.asarray(obs.bbox_min)
            self.bbox_max = (1 - alpha) * self.bbox_max + alpha * np.asarray(obs.bbox_max)
            self.rgb = tuple(  # type: ignore[assignment]
                float((1 - alpha) * a + alpha * b) for a, b in zip(self.rgb, obs.rgb, strict=True)
            )
            if len(obs.points):
                self.points = voxel_downsample(
                    np.vstack([np.asarray(obs.points, dtype=np.float32), self.points]),
                    config.voxel_size,
                    config.max_points_per_object,
                )
            self.fusion_weight += w
        for votes, key in (
            (self.label_votes, obs.label),
            (self.color_votes, obs.color),
            (self.shape_votes, obs.shape),
        ):
            if key:
                votes[key] = votes.get(key, 0.0) + w * coverage
        self.observations += 1
        self.confidence = float(
            np.clip(self.confidence + config.confidence_gain * w * (1 - self.confidence), 0, 1)
        )
        self.status = "visible"
        self.absent_since = None
        self.last_camera = obs.camera
        self.mark_seen(obs.stamp, config)
        self.record_pose(obs.stamp, config)
        self._yaw = self._grasp = self._narrow = None  # points or shape votes changed
        self._words = None

    def is_partial_view(
        self, obs: ObjectObservation, config: MemoryConfig, min_confidence: float | None = None
    ) -> bool:
        """A weak or much smaller sighting of an established object: cut by the
        image edge, half hidden, or a sliver seen edge-on."""
        threshold = config.min_create_confidence if min_confidence is None else min_confidence
        if obs.confidence < threshold:
            return True
        if self.observations < 3:
            return False
        return _volume(obs) < config.partial_volume_fraction * _volume(self)

    def mark_seen(self, stamp: float, config: MemoryConfig) -> None:
        self.last_seen = max(self.last_seen, stamp)
        if self.visibility and stamp - self.visibility[-1][1] <= config.visibility_gap:
            self.visibility[-1][1] = max(self.visibility[-1][1], stamp)
        else:
            self.visibility.append([stamp, stamp])
            del self.visibility[: -config.history_length]

    def record_pose(self, stamp: float, config: MemoryConfig) -> bool:
        """Append to the pose history when the centroid moved beyond ``move_threshold``."""
        last = np.asarray(self.pose_history[-1][1]) if self.pose_history else None
        if (
            last is not None
            and float(np.linalg.norm(self.centroid - last)) <= config.move_threshold
        ):
            return False
        self.pose_history.append((stamp, _xyz(self.centroid)))
        del self.pose_history[: -config.history_length]
        return True

    def absorb(self, other: MemoryObject, config: MemoryConfig, part: bool = False) -> None:
        """Merge a duplicate into this object (``other.merged_into`` is set by the
        caller). A ``part`` (:func:`part_of`) adds its sightings, not its votes or box."""
        if part:
            self.observations += other.observations
            self.first_seen = min(self.first_seen, other.first_seen)
            if other.status == "visible":
                self.status = "visible"
            return
        for mine, theirs in (
            (self.label_votes, other.label_votes),
            (self.color_votes, other.color_votes),
            (self.shape_votes, other.shape_votes),
        ):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0.0) + value
        total = self.fusion_weight + other.fusion_weight
        a = other.fusion_weight / total if total > 0 else 0.5
        self.centroid = (1 - a) * self.centroid + a * other.centroid
        self.bbox_min = np.minimum(self.bbox_min, other.bbox_min)
        self.bbox_max = np.maximum(self.bbox_max, other.bbox_max)
        self.points = voxel_downsample(
            np.vstack([self.points, other.points]), config.voxel_size, config.max_points_per_object
        )
        self.fusion_weight = total
        self.observations += other.observations
        self.confidence = max(self.confidence, other.confidence)
        self.first_seen = min(self.first_seen, other.first_seen)
        if other.last_seen > self.last_seen:
            self.last_seen, self.last_camera = other.last_seen, other.last_camera
        if other.status == "visible":
            self.status = "visible"
        self._yaw = self._grasp = self._narrow = None
        self._words = None

    def to_record(self) -> dict:
        """JSON-able fields (points and pose history are stored separately)."""
        return {
            "label_votes": self.label_votes,
            "color_votes": self.color_votes,
            "shape_votes": self.shape_votes,
            "rgb": list(self.rgb),
            "centroid": self.centroid.tolist(),
            "bbox_min": self.bbox_min.tolist(),
            "bbox_max": self.bbox_max.tolist(),
            "observations": self.observations,
            "confidence": self.confidence,
            "status": self.status,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_camera": self.last_camera,
            "fusion_weight": self.fusion_weight,
            "visibility": self.visibility,
            "absence_evidence": self.absence_evidence,
            "absent_since": self.absent_since,
            "merged_into": self.merged_into,
        }

    @classmethod
    def from_record(
        cls,
        object_id: int,
        rec: dict,
        points: np.ndarray,
        pose_history: list[tuple[float, tuple[float, float, float]]],
    ) -> MemoryObject:
        return cls(
            id=object_id,
            label_votes=dict(rec["label_votes"]),
            color_votes=dict(rec["color_votes"]),
            shape_votes=dict(rec["shape_votes"]),
            rgb=tuple(rec["rgb"]),  # type: ignore[arg-type]
            centroid=np.asarray(rec["centroid"], dtype=float),
            bbox_min=np.asarray(rec["bbox_min"], dtype=float),
            bbox_max=np.asarray(rec["bbox_max"], dtype=float),
            points=np.asarray(points, dtype=np.float32).reshape(-1, 3),
            observations=int(rec["observations"]),
            confidence=float(rec["confidence"]),
            status=str(rec["status"]),
            first_seen=float(rec["first_seen"]),
            last_seen=float(rec["last_seen"]),
            last_camera=str(rec["last_camera"]),
            fusion_weight=float(rec["fusion_weight"]),
            visibility=[list(v) for v in rec["visibility"]],
            absence_evidence=int(rec["absence_evidence"]),
            absent_since=rec["absent_since"],
            pose_history=list(pose_history),
            merged_into=rec["merged_into"],
        )


def is_ghost(obj: MemoryObject, stamp: float, config: MemoryConfig) -> bool:
    """Seen too few times and then gone, or seen once, weakly, and never again."""
    if obj.status == "absent" and obj.observations < config.ghost_min_observations:
        return True
    return (
        obj.observations == 1
        and obj.status != "visible"
        and obj.confidence < config.ghost_max_confidence
        and stamp - obj.last_seen > config.ghost_max_age
    )


def _volume(box: MemoryObject | ObjectObservation) -> float:
    """Volume of an axis-aligned box, each side at least 1 mm (scalar arithmetic:
    this runs for every pair of objects near each other, every frame)."""
    x0, y0, z0 = np.asarray(box.bbox_min).tolist()
    x1, y1, z1 = np.asarray(box.bbox_max).tolist()
    return max(x1 - x0, 1e-3) * max(y1 - y0, 1e-3) * max(z1 - z0, 1e-3)


#: A piece this thin across (a screwdriver's shaft, 7 mm) is no object of its
#: own where it touches one [m].
THIN_PART = 0.012


def _thin(obj: MemoryObject | ObjectObservation) -> bool:
    """Under ``THIN_PART`` across its footprint's narrow side (a rectangle fitted
    to its points: a shaft lying diagonally has a wide axis-aligned box). A
    remembered object's narrow side is cached; a sighting's is fitted here."""
    if isinstance(obj, MemoryObject):
        return obj.narrow_side < THIN_PART
    fit = footprint(obj.points) if len(obj.points) else None
    if fit is None:
        return float(np.min(obj.bbox_max[:2] - obj.bbox_min[:2])) < THIN_PART
    return fit[2] < THIN_PART


def part_of(part: MemoryObject, whole: MemoryObject, margin: float) -> bool:
    """``part`` is a piece of ``whole`` seen on its own: ``whole`` no container,
    and either achromatic (white, grey, black) under half ``whole``'s volume
    with ``whole`` of a colour (a bottle's cap, a can's lid or label band), of
    ``whole``'s colour under a quarter of its volume (a mug's handle clustered
    apart), both with its centre inside ``whole``'s box grown by ``margin``; or
    thin (under ``THIN_PART`` across: a screwdriver's metal shaft) under half
    its volume, with its box touching ``whole``'s grown box (a shaft's centre
    lies beyond the handle). Two solid things cannot share that space. The
    cheap tests (volume, boxes touching) come before the rectangle fit."""
    part_volume, whole_volume = _volume(part), _volume(whole)
    if part_volume >= 0.5 * whole_volume or whole.container:
        return False
    lo, hi = whole.bbox_min - margin, whole.bbox_max + margin
    if not _touch(lo.tolist(), hi.tolist(), part):
        return False  # not even touching
    thin = _thin(part)
    if part.color in ACHROMATIC and whole.color not in ACHROMATIC:
        limit = 0.5
    elif same_colour(part.color, whole.color):
        limit = 0.25
    elif thin:
        limit = 0.5
    else:
        return False
    if part_volume >= limit * whole_volume:
        return False
    if thin:
        return True  # touching, checked above
    c = part.centroid
    return bool(np.all((c >= lo) & (c <= hi)))


def find_duplicate(
    obj: MemoryObject, others: list[MemoryObject], config: MemoryConfig
) -> MemoryObject | None:
    """Another live object that is the same thing: the same label and a strong
    box overlap (IoU ``merge_iou``, or the smaller box ``merge_inside`` within
    the larger: a view cut by the image's edge kept apart; two twins standing
    together overlap far less) or a partial view of it (under half its volume,
    centre inside its box), the same colour with one's centre inside the other's box, or
    one a part of the other (:func:`part_of`)."""
    if obj.status == "absent":
        return None
    margin = config.fragment_margin
    lo = (np.asarray(obj.bbox_min) - margin).tolist()
    hi = (np.asarray(obj.bbox_max) + margin).tolist()
    apart_is_never = config.merge_iou > 0 and config.merge_inside > 0
    for other in others:
        if other.id == obj.id or other.status == "absent" or other.merged_into is not None:
            continue
        if apart_is_never and not _touch(lo, hi, other):
            continue  # every test below needs the boxes to touch within the margin
        if part_of(obj, other, margin) or part_of(other, obj, margin):
            return other
        if other.label == obj.label:
            iou = box_iou(obj.bbox_min, obj.bbox_max, other.bbox_min, other.bbox_max)
            if iou >= config.merge_iou or box_inside(obj, other) >= config.merge_inside:
                return other
            if _partial_of(obj, other) or _partial_of(other, obj):
                return other
        elif (
            same_colour(other.color, obj.color)
            and (other.color == obj.color or shapes_agree(other.shape, obj.shape))
            and (_contains(other, obj.centroid) or _contains(obj, other.centroid))
        ):  # one thing seen twice under two shape words (or in shade: a black box
            # and a white box); a white bowl and a black screwdriver are two things
            return other
    return None


def _touch(lo: list[float], hi: list[float], other: MemoryObject) -> bool:
    """``other``'s box meets the box ``lo``..``hi`` (scalars: run per pair)."""
    o_lo, o_hi = other.bbox_min.tolist(), other.bbox_max.tolist()
    return all(o_hi[k] >= lo[k] and o_lo[k] <= hi[k] for k in range(3))


def _partial_of(part: MemoryObject, whole: MemoryObject) -> bool:
    """``part`` (the same label) is a partial view of ``whole``: under half its
    volume with its centre inside ``whole``'s box (a bowl's far wall seen
    alone). Twins are each other's size and stay apart."""
    return _volume(part) < 0.5 * _volume(whole) and _contains(whole, part.centroid)


def _contains(obj: MemoryObject, point: np.ndarray) -> bool:
    return bool(np.all((point >= obj.bbox_min) & (point <= obj.bbox_max)))


def object_msg(o: MemoryObject) -> MemoryObjectMsg:
    return MemoryObjectMsg(
        id=o.id,
        label=o.label,
        color=o.color,
        shape=o.shape,
        label_votes={k: float(v) for k, v in o.label_votes.items()},
        centroid=_xyz(o.centroid),
        bbox_min=_xyz(o.bbox_min),
        bbox_max=_xyz(o.bbox_max),
        confidence=float(np.clip(o.confidence, 0.0, 1.0)),
        observations=o.observations,
        first_seen=o.first_seen,
        last_seen=o.last_seen,
        last_camera=o.last_camera,
        status=o.status,  # type: ignore[arg-type]
        container=o.container,
        yaw=o.yaw,
        grasp_point=o.grasp_point,
    )


def _xyz(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))
