"""Tuning of the memory core (ROS-free): one dataclass that validates itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

COMMIT_POLICIES = ("every_update", "interval")


class MemoryConfigError(ValueError):
    pass


@dataclass(frozen=True)
class MemoryConfig:
    """Every threshold of :class:`robot_memory.memory.scene_graph.SceneMemory`.

    Distances in metres, times in seconds (of the observation stamps, not the
    wall clock), confidences in 0..1.
    """

    # association (one-to-one per frame, Hungarian)
    gating_distance: float = 0.12  # centroids further apart never match
    max_match_cost: float = 1.0  # total cost at or above this never matches
    weight_distance: float = 1.0  # x centroid distance / gating distance
    weight_iou: float = 0.3  # x (1 - 3D IoU)
    weight_size: float = 0.3  # x relative size difference
    weight_appearance: float = 0.6  # x colour / shape / label dissimilarity
    colour_gate_rgb: float = 0.5  # two different colour words this far apart in rgb never
    # match (a green cube put where a red one was is not the red one); 0: no gate
    fragment_margin: float = (
        0.01  # a partial view inside a seen object's box (+ this) is part of it
    )
    min_create_confidence: float = 0.3  # weaker unmatched observations create no object
    min_relocate_confidence: float = 0.6  # moving a remembered object far takes a good view
    partial_volume_fraction: float = 0.5  # a sighting with less of the box is a partial view
    partial_view_weight: float = 0.25  # its votes count this much; it never moves the object
    # an object fused from two things, taken apart (memory/unmerge.py): 0 frames turns it off
    unmerge_frames: int = 3  # frames that see it as separate things of two colours ...
    unmerge_window_s: float = 2.0  # ... within this [s]
    unmerge_min_share: float = 0.2  # each of them covers this much of its footprint
    # fusion
    voxel_size: float = 0.005
    max_points_per_object: int = 2000
    min_fusion_weight: float = 0.2  # the newest observation weighs at least this much
    move_threshold: float = 0.01  # centroid moves beyond this go into the pose history
    # confidence and permanence
    initial_confidence_scale: float = 0.6  # new object: perception confidence x this
    confidence_gain: float = 0.3  # conf += gain * obs_conf * (1 - conf) per sighting
    absence_decay: float = 0.25  # conf -= this per frame whose depth shows free space
    absence_threshold: float = 0.2  # below: status "absent"
    depth_margin: float = 0.03  # free space / occlusion margin on depth
    min_depth_margin: float = 0.01  # free space margin for flat objects, at least (noise)
    permanence_sample_points: int = 24  # points per object checked against depth
    free_fraction: float = 0.5  # of the checked points with a return
    # relations
    near_distance: float = 0.15
    near_max_neighbours: int = 6  # nearest only: bounds the edge count
    on_tolerance: float = 0.015  # bottom of A to top of B
    on_min_overlap: float = 0.3  # xy overlap / smaller footprint
    table_tolerance: float = 0.015  # bottom of A to the table height
    container_margin: float = 0.01
    # the active window (Hydra/Khronos-style): an update considers only the objects
    # within this distance [m] (xy) of the camera or of an observation; 0: every object
    active_radius: float = 3.0
    # bounded growth
    max_objects: int = 20000
    ghost_min_observations: int = 3  # absent objects seen fewer times are removed
    ghost_max_confidence: float = 0.35  # a once-seen object below this ...
    ghost_max_age: float = 30.0  # ... and unseen this long is removed
    merge_iou: float = 0.5  # same label and this 3D IoU: duplicates, merged
    merge_inside: float = 0.65  # same label and the smaller box this much inside: merged too
    # history
    time_jump_tolerance: float = 0.0  # accepted backwards step per camera
    history_length: int = 200  # pose history entries and visibility intervals kept
    visibility_gap: float = 1.0  # a longer gap between sightings starts a new interval
    relation_history_length: int = 500  # ended relations kept (oldest dropped first)
    relation_history_kinds: tuple[str, ...] = ("in", "on")  # relations whose end is recorded
    # events (memory/events.py)
    event_log_length: int = 20000  # events kept (oldest dropped first)
    move_event_distance: float = 0.05  # [m] from where it settled: a "moved" event
    move_merge_s: float = 10.0  # moves of one object this close in time: one event
    # persistence
    commit_policy: str = "every_update"  # or "interval": every commit_interval seconds
    commit_interval: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise MemoryConfigError(f"{f.name} must be finite, got {value}")
        positive = [
            "gating_distance",
            "max_match_cost",
            "voxel_size",
            "near_distance",
            "depth_margin",
            "min_depth_margin",
            "visibility_gap",
            "commit_interval",
            "move_threshold",
            "move_event_distance",
        ]
        for name in positive:
            if getattr(self, name) <= 0:
                raise MemoryConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        non_negative = [
            "weight_distance",
            "weight_iou",
            "weight_size",
            "weight_appearance",
            "colour_gate_rgb",
            "on_tolerance",
            "table_tolerance",
            "container_margin",
            "fragment_margin",
            "ghost_max_age",
            "time_jump_tolerance",
            "absence_decay",
            "move_merge_s",
            "active_radius",
            "unmerge_window_s",
        ]
        for name in non_negative:
            if getattr(self, name) < 0:
                raise MemoryConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        unit = [
            "min_fusion_weight",
            "initial_confidence_scale",
            "confidence_gain",
            "absence_threshold",
            "free_fraction",
            "on_min_overlap",
            "ghost_max_confidence",
            "merge_iou",
            "merge_inside",
            "min_create_confidence",
            "min_relocate_confidence",
            "partial_volume_fraction",
            "partial_view_weight",
            "unmerge_min_share",
        ]
        for name in unit:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise MemoryConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        counts = [
            "max_points_per_object",
            "permanence_sample_points",
            "near_max_neighbours",
            "max_objects",
            "history_length",
            "relation_history_length",
            "event_log_length",
        ]
        for name in counts:
            if int(getattr(self, name)) < 1:
                raise MemoryConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.ghost_min_observations < 0:
            raise MemoryConfigError("ghost_min_observations must be >= 0")
        if self.unmerge_frames < 0:
            raise MemoryConfigError("unmerge_frames must be >= 0 (0: never take objects apart)")
        kinds = self.relation_history_kinds
        if not isinstance(kinds, tuple) or not set(kinds) <= {"in", "on", "near"}:
            raise MemoryConfigError(
                "relation_history_kinds must be a tuple of 'in', 'on', 'near', "
                f"got {self.relation_history_kinds!r}"
            )
        if self.commit_policy not in COMMIT_POLICIES:
            raise MemoryConfigError(
                f"commit_policy must be one of {COMMIT_POLICIES}, got {self.commit_policy!r}"
            )
