"""Who is who, beyond one-to-one association (ROS-free).

After the Hungarian step, an observation that matched nothing is one of:

* a **fragment** of an object already remembered there: a partial view at the
  image edge, a shaded wall of the cover, a sliver of a capsule. Its box lies
  inside the object's box and its colour agrees, so it is not a new object;
* a remembered object **seen moved**: re-identified by appearance among the
  objects that were not confirmed where memory had them (out of view, or in
  view and gone), when exactly one candidate fits;
* a **new** object, if perception was confident enough to create one.

Colour words are the strong cue here because they survive partial views; shape
words do not (a cube cut by the image edge looks like a prism). White, grey and
black are one family: the same white cover reads as grey or black in shade.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from robot_memory.memory.colours import ACHROMATIC, SHADE, same_colour
from robot_memory.memory.object_node import (
    MemoryObject,
    find_duplicate,
    is_container_label,
    part_of,
)
from robot_memory.memory.permanence import OUT_OF_VIEW
from robot_memory.memory.shapes import shapes_agree

if TYPE_CHECKING:
    from robot_memory.memory.scene_graph import SceneMemory
from robot_memory.perception.observations import ObjectObservation


def _inside_fraction(lo: np.ndarray, hi: np.ndarray, plo: np.ndarray, phi: np.ndarray) -> float:
    """Fraction of box (lo, hi)'s volume inside box (plo, phi)."""
    size = np.clip(hi - lo, 1e-4, None)
    inter = np.clip(np.minimum(hi, phi) - np.maximum(lo, plo), 0.0, None)
    inter = np.where(hi - lo < 1e-4, np.where((lo >= plo) & (lo <= phi), 1e-4, 0.0), inter)
    return float(np.prod(inter / size))


def fragment_parent(
    obs: ObjectObservation,
    objects: Iterable[MemoryObject],
    margin: float,
    min_inside: float = 0.6,
) -> MemoryObject | None:
    """A live object whose box (grown by ``margin``) holds most of ``obs``'s box,
    with the same colour family (or ``obs`` reads black: a shaded side of
    anything) and at least twice the volume: ``obs`` is part
    of it (a wall of the cover seen edge-on, a capsule cut by the image edge)."""
    objects = list(objects)
    if not objects:
        return None
    lo, hi = np.asarray(obs.bbox_min), np.asarray(obs.bbox_max)
    c = np.asarray(obs.centroid)
    los = np.array([o.bbox_min for o in objects]) - margin
    his = np.array([o.bbox_max for o in objects]) + margin
    holds = np.all((c >= los) & (c <= his), axis=1)  # cheap test first, for every object
    best, best_volume = None, 0.0
    obs_volume = float(np.prod(np.clip(hi - lo, 1e-4, None)))
    for j in np.flatnonzero(holds):
        obj = objects[j]
        if obj.status == "absent" or obj.merged_into is not None:
            continue
        if not (same_colour(obs.color, obj.color) or obs.color in SHADE):
            continue
        volume = float(np.prod(np.clip(obj.bbox_max - obj.bbox_min, 1e-4, None)))
        if volume < 2.0 * obs_volume or _inside_fraction(lo, hi, los[j], his[j]) < min_inside:
            continue
        if volume > best_volume:
            best, best_volume = obj, volume
    return best


def part_owner(
    obs: ObjectObservation, objects: list[MemoryObject], margin: float
) -> MemoryObject | None:
    """The live object ``obs`` is a piece of (:func:`part_of`: a mug's handle
    clustered apart, a bottle's cap), whichever object it would match: it
    confirms nothing and moves nothing."""
    if not objects:
        return None
    lo = np.array([o.bbox_min for o in objects]) - margin
    hi = np.array([o.bbox_max for o in objects]) + margin
    touching = np.all((np.asarray(obs.bbox_max) >= lo) & (np.asarray(obs.bbox_min) <= hi), axis=1)
    for j in np.flatnonzero(touching):  # cheap test first
        whole = objects[j]
        if whole.status != "absent" and part_of(obs, whole, margin):  # type: ignore[arg-type]
            return whole
    return None


def merged_view(obs: ObjectObservation, obj: MemoryObject, objects: list[MemoryObject]) -> bool:
    """``obs``, matched to ``obj``, is ``obj`` and a neighbour seen as one
    cluster (two touching twins): its box is much larger than ``obj``'s and
    holds the centre of another live object of the same colour."""
    lo, hi = np.asarray(obs.bbox_min), np.asarray(obs.bbox_max)
    volume = float(np.prod(np.clip(hi - lo, 1e-4, None)))
    if volume < 1.8 * float(np.prod(np.clip(obj.bbox_max - obj.bbox_min, 1e-4, None))):
        return False
    for other in objects:
        if other.id == obj.id or other.status == "absent" or other.merged_into is not None:
            continue
        if same_colour(other.color, obs.color) and np.all(
            (other.centroid >= lo) & (other.centroid <= hi)
        ):
            return True
    return False


#: A sighting at least this confident is whole: its shape word is trusted.
SHAPE_VETO_CONFIDENCE = 0.9


def reidentify(obs: ObjectObservation, candidates: list[MemoryObject]) -> MemoryObject | None:
    """The one remembered object ``obs`` can be, among ``candidates`` (objects
    not confirmed where memory had them). Unique colour first, then unique
    label among those of that colour; ``None`` when ambiguous. When the
    sighting is whole and clear (confidence >= ``SHAPE_VETO_CONFIDENCE``: not
    cut by the image's edge, not a sliver), a candidate whose shape word
    names another kind of thing is none (a blue bottle seen for the first
    time is not the blue mug moved: ``shapes.shapes_agree``); a partial view
    often reads the wrong shape (a cube cut by the edge: "prism"), so its
    shape word does not count."""
    chromatic = obs.color not in ACHROMATIC
    clear = obs.confidence >= SHAPE_VETO_CONFIDENCE
    coloured = [
        o
        for o in candidates
        if same_colour(o.color, obs.color) and (not clear or shapes_agree(o.shape, obs.shape))
    ]
    if chromatic and len(coloured) == 1:
        return coloured[0]
    labelled = [o for o in coloured if o.label == obs.label]
    return labelled[0] if len(labelled) == 1 else None


def displaced_objects(
    candidates: list[MemoryObject],
    matched: set[int],
    verdicts: dict[int, str],
    observations: list[ObjectObservation],
) -> set[int]:
    """Unmatched objects in view whose place another object now takes (an
    observation of another colour, not a container over it, covers their
    centroid): they have left it, as if depth showed it free (two objects
    swapped places, one put where another was)."""
    takers = [o for o in observations if not is_container_label(o.label)]
    out = set()
    for obj in candidates:
        if obj.id in matched or obj.status == "absent" or verdicts.get(obj.id) == OUT_OF_VIEW:
            continue
        xy = np.asarray(obj.centroid)[:2]
        for obs in takers:
            lo, hi = np.asarray(obs.bbox_min)[:2], np.asarray(obs.bbox_max)[:2]
            if not same_colour(obs.color, obj.color) and np.all(xy >= lo) and np.all(xy <= hi):
                out.add(obj.id)
                break
    return out


def merge_duplicates(memory: SceneMemory, changed: set[int]) -> list[int]:
    """Merge each changed object of ``memory`` with an overlapping same-label one. Candidates
    come from the spatial index (boxes can only overlap within the two reaches);
    the merged-into object joins ``changed`` so its relations are refreshed."""
    from robot_memory.memory.spatial_index import memory_index

    index = memory_index(memory, changed)
    removed: list[int] = []
    for oid in sorted(changed):
        obj = memory._objects.get(oid)
        if obj is None or obj.status == "absent":
            continue
        if memory.config.merge_iou > 0 and oid in index and len(memory._objects) > 64:
            radius = float(index.reach[index.slot_of[oid]]) + index.reach_max()
            near = index.objects_near(obj, radius)
            other = find_duplicate(obj, near, memory.config)
            if other is not None and find_duplicate(
                obj, [o for o in near if o is not other], memory.config
            ):  # several: the first in memory order, as a full scan would pick
                ids = {o.id for o in near}
                ordered = [o for o in memory._objects.values() if o.id in ids]
                other = find_duplicate(obj, ordered, memory.config)
        else:
            other = find_duplicate(obj, list(memory._objects.values()), memory.config)
        if other is None:
            continue
        margin = memory.config.fragment_margin
        if part_of(obj, other, margin):  # the whole keeps its id, words and box
            keep, gone, part = other, obj, True
        elif part_of(other, obj, margin):
            keep, gone, part = obj, other, True
        else:
            keep, gone = (obj, other) if obj.id < other.id else (other, obj)
            part = False
        memory._touch(keep).absorb(memory._touch(gone), memory.config, part)
        gone.merged_into = keep.id
        memory._remove(gone.id, merged=True)
        removed.append(gone.id)
        changed.add(keep.id)
        index.sync(memory._objects, (keep.id, gone.id))
    return removed
