"""Scoring memory snapshots against simulator ground truth.

Everything here is pure Python over the schema models: a memory snapshot
(:class:`~robot_memory.schemas.SceneGraphMsg`) is matched to the ground truth
(:class:`~robot_memory.schemas.GroundTruth`) of the same instant with the
Hungarian algorithm, then precision/recall, localization, duplicates, relations
and object permanence are scored. Distances are metres, times seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from robot_memory.perception.observations import quat_to_matrix
from robot_memory.schemas import (
    GroundTruth,
    GroundTruthObject,
    MemoryAnswer,
    MemoryObjectMsg,
    SceneGraphMsg,
)

TABLE_REGIONS = frozenset({"table_left", "table_centre", "table_right"})
FIXED_PLACES = frozenset({"table", "bin"})  # places memory knows from the cell config
DUPLICATE_DISTANCE = 0.08  # an extra same-label memory object this close to a matched GT one
PLACE_DISTANCE = 0.05  # horizontal distance for a memory object to stand for a movable place
PLACE_Z_SLACK = 0.03  # beyond the place's half height (memory often sees only the top)
_INVALID = 1e6  # assignment cost of a pair that may not match


def label_words(label: str) -> tuple[str, ...]:
    """Case-insensitive words of a label: 'Red  Cube' -> ('red', 'cube')."""
    return tuple(label.lower().split())


def labels_match(a: str, b: str) -> bool:
    return label_words(a) == label_words(b)


def _dist(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)))


@dataclass
class MatchResult:
    """One snapshot's assignment of memory objects to ground-truth objects."""

    pairs: list[tuple[int, str, float]]  # (memory object id, GT id, distance [m])
    false_positives: list[int]  # unmatched memory objects, duplicates included
    false_negatives: list[str]  # unmatched GT objects
    duplicates: list[int]  # extra memory objects for an already matched GT object
    ignored: list[int]  # memory objects standing for a movable GT place (the cover)
    ignored_places: dict[int, str] = field(default_factory=dict)  # memory id -> GT place id


#: A memory object this close to a grasped GT object of its label is that
#: object in the hand (GT moves with the hand; memory lags by a frame or two).
GRASPED_DISTANCE = 0.1


def scored_truth(truth: GroundTruth) -> list[GroundTruthObject]:
    """GT objects that memory is scored on: kind object, not in the hand."""
    return [o for o in truth.objects if o.kind == "object" and not o.grasped]


def scored_memory(graph: SceneGraphMsg) -> list[MemoryObjectMsg]:
    """Memory objects that claim to exist: everything not marked absent."""
    return [o for o in graph.objects if o.status != "absent"]


def _stands_for_place(mem: MemoryObjectMsg, place: GroundTruthObject) -> bool:
    dxy = _dist(mem.centroid[:2], place.position[:2])
    dz = abs(mem.centroid[2] - place.position[2])
    if dxy > PLACE_DISTANCE or dz > place.size[2] / 2.0 + PLACE_Z_SLACK:
        return False
    words = set(label_words(mem.label)) | {mem.color.lower()}
    return mem.container or bool(words & set(label_words(place.label)))


def match_objects(
    graph: SceneGraphMsg,
    truth: GroundTruth,
    max_distance: float = 0.03,
    require_label: bool = True,
) -> MatchResult:
    """Hungarian matching of memory objects (status != absent) to GT objects.

    A pair is allowed when the centroid distance is at most ``max_distance``
    and (with ``require_label``) the labels have the same words. The
    assignment maximizes the number of allowed pairs first, then minimizes
    their total distance. Unmatched memory objects are then sorted into
    duplicates (same label, within 8 cm of a matched GT object; also false
    positives), ``ignored`` (the memory's view of a movable GT place such as
    the cover) and the remaining false positives.
    """
    mems = scored_memory(graph)
    gts = scored_truth(truth)
    cost = np.full((len(mems), len(gts)), _INVALID)
    for i, m in enumerate(mems):
        for j, g in enumerate(gts):
            d = _dist(m.centroid, g.position)
            if d <= max_distance and (not require_label or labels_match(m.label, g.label)):
                cost[i, j] = d
    pairs: list[tuple[int, str, float]] = []
    if mems and gts:
        rows, cols = linear_sum_assignment(cost)
        for i, j in zip(rows, cols, strict=True):
            if cost[i, j] < _INVALID:
                pairs.append((mems[i].id, gts[j].id, float(cost[i, j])))
    matched_mem = {p[0] for p in pairs}
    matched_gt = {p[1] for p in pairs}
    movable_places = [o for o in truth.objects if o.kind == "place" and o.id not in FIXED_PLACES]
    result = MatchResult(
        pairs=pairs,
        false_positives=[],
        false_negatives=[g.id for g in gts if g.id not in matched_gt],
        duplicates=[],
        ignored=[],
    )
    for m in mems:
        if m.id in matched_mem:
            continue
        if any(
            g.id in matched_gt
            and labels_match(m.label, g.label)
            and _dist(m.centroid, g.position) <= DUPLICATE_DISTANCE
            for g in gts
        ):
            result.duplicates.append(m.id)
            result.false_positives.append(m.id)
            continue
        held = next(
            (
                g
                for g in truth.objects
                if g.grasped
                and labels_match(m.label, g.label)
                and _dist(m.centroid, g.position) <= GRASPED_DISTANCE
            ),
            None,
        )
        if held is not None:  # memory following an object in the hand: not scored either
            result.ignored.append(m.id)
            continue
        place = next((p for p in movable_places if _stands_for_place(m, p)), None)
        if place is not None:
            result.ignored.append(m.id)
            result.ignored_places[m.id] = place.id
        else:
            result.false_positives.append(m.id)
    return result


@dataclass
class FrameScore:
    """The scores of one memory snapshot."""

    stamp: float
    precision: float
    recall: float
    f1: float
    loc_errors: list[float]  # distance of each matched pair [m]
    duplicate_ratio: float  # duplicates / scored memory objects
    relation_correct: int
    relation_total: int
    permanence_correct: int
    permanence_total: int
    n_memory: int  # memory objects scored (not absent, not standing for a place)
    n_truth: int  # GT objects scored (kind object, not grasped)
    n_matched: int = 0
    n_duplicates: int = 0
    false_positives: list[int] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)


def is_covered(obj: GroundTruthObject, cover: GroundTruthObject) -> bool:
    """``obj``'s centre lies inside the cover's box (as in the sim task)."""
    rot = quat_to_matrix(np.asarray(cover.quaternion, dtype=float))
    local = rot.T @ (np.asarray(obj.position) - np.asarray(cover.position))
    return bool(np.all(np.abs(local) < np.asarray(cover.size) / 2.0))


def _relation_verdict(
    gt: GroundTruthObject,
    mem_id: int,
    graph: SceneGraphMsg,
    truth: GroundTruth,
    gt_to_mem: dict[str, int],
    place_to_mem: dict[str, set[int]],
) -> bool | None:
    """Whether memory's relations for ``mem_id`` agree with GT; None if not scorable."""
    rels = [(r.relation, r.target) for r in graph.relations if r.subject == mem_id]
    cover = next((o for o in truth.objects if o.id == "cover"), None)
    if cover is not None and gt.id != "cover" and is_covered(gt, cover):
        targets = place_to_mem.get("cover", set())
        if not targets:
            return None
        return any(rel == "in" and t in targets for rel, t in rels)
    support = gt.support
    if support == "table":
        return not any(rel == "in" or (rel == "on" and t not in TABLE_REGIONS) for rel, t in rels)
    if support == "bin":
        return ("in", "bin") in rels
    if support in gt_to_mem:
        return ("on", gt_to_mem[support]) in rels
    if support in place_to_mem:  # resting on top of the cover
        return any(rel == "on" and t in place_to_mem[support] for rel, t in rels)
    return None  # in the air, or on something memory does not have


def score_snapshot(
    graph: SceneGraphMsg,
    truth: GroundTruth,
    out_of_view: set[str] | dict[str, tuple[float, float, float]],
    max_distance: float = 0.03,
) -> FrameScore:
    """Score one snapshot against the ground truth of the same instant.

    Relations are scored for matched pairs whose expected target memory has
    (a relation to an unmatched object or a lost cover is not scorable; the
    miss already shows in recall). Permanence: each GT object in
    ``out_of_view`` counts as kept if a non-absent memory object with its
    label lies within ``max_distance`` of where it should be remembered: its
    true position, or, when ``out_of_view`` maps ids to positions, that position
    (where it was last seen: an object moved while nobody watched can only be
    remembered where it was).
    """
    match = match_objects(graph, truth, max_distance=max_distance)
    n_memory = len(scored_memory(graph)) - len(match.ignored)
    n_truth = len(scored_truth(truth))
    n_matched = len(match.pairs)
    precision = n_matched / n_memory if n_memory else 1.0
    recall = n_matched / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0

    gt_to_mem = {gt_id: mem_id for mem_id, gt_id, _ in match.pairs}
    place_to_mem: dict[str, set[int]] = {}
    for mem_id, place_id in match.ignored_places.items():
        place_to_mem.setdefault(place_id, set()).add(mem_id)
    rel_correct = rel_total = 0
    for mem_id, gt_id, _ in match.pairs:
        verdict = _relation_verdict(truth.get(gt_id), mem_id, graph, truth, gt_to_mem, place_to_mem)
        if verdict is not None:
            rel_total += 1
            rel_correct += int(verdict)

    perm_correct = perm_total = 0
    present = scored_memory(graph)
    for gt in scored_truth(truth):
        if gt.id not in out_of_view:
            continue
        perm_total += 1
        where = out_of_view[gt.id] if isinstance(out_of_view, dict) else gt.position
        perm_correct += int(
            any(
                labels_match(m.label, gt.label) and _dist(m.centroid, where) <= max_distance
                for m in present
            )
        )
    return FrameScore(
        stamp=float(graph.stamp),
        precision=precision,
        recall=recall,
        f1=f1,
        loc_errors=[d for _, _, d in match.pairs],
        duplicate_ratio=len(match.duplicates) / n_memory if n_memory else 0.0,
        relation_correct=rel_correct,
        relation_total=rel_total,
        permanence_correct=perm_correct,
        permanence_total=perm_total,
        n_memory=n_memory,
        n_truth=n_truth,
        n_matched=n_matched,
        n_duplicates=len(match.duplicates),
        false_positives=list(match.false_positives),
        false_negatives=list(match.false_negatives),
    )


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def aggregate(scores: list[FrameScore]) -> dict:
    """Summary over snapshots (JSON-ready; None where there was nothing to score)."""
    errors = np.array([e for s in scores for e in s.loc_errors], dtype=float)
    last = scores[-1] if scores else None
    rel_c = sum(s.relation_correct for s in scores)
    rel_t = sum(s.relation_total for s in scores)
    perm_c = sum(s.permanence_correct for s in scores)
    perm_t = sum(s.permanence_total for s in scores)

    def mean(attr: str) -> float | None:
        return float(np.mean([getattr(s, attr) for s in scores])) if scores else None

    return {
        "snapshots": len(scores),
        "precision_mean": mean("precision"),
        "recall_mean": mean("recall"),
        "f1_mean": mean("f1"),
        "precision_final": last.precision if last else None,
        "recall_final": last.recall if last else None,
        "f1_final": last.f1 if last else None,
        "matched_pairs": int(errors.size),
        "loc_error_mean": float(errors.mean()) if errors.size else None,
        "loc_error_p95": float(np.percentile(errors, 95)) if errors.size else None,
        "loc_error_max": float(errors.max()) if errors.size else None,
        "duplicate_ratio_mean": mean("duplicate_ratio"),
        "duplicates_final": last.n_duplicates if last else None,
        "duplicates_max": max(s.n_duplicates for s in scores) if scores else None,
        "relation_correct": rel_c,
        "relation_total": rel_t,
        "relation_accuracy": _ratio(rel_c, rel_t),
        "permanence_correct": perm_c,
        "permanence_total": perm_t,
        "permanence_accuracy": _ratio(perm_c, perm_t),
        "n_memory_final": last.n_memory if last else None,
        "n_truth_final": last.n_truth if last else None,
        "false_positives_final": list(last.false_positives) if last else [],
        "false_negatives_final": list(last.false_negatives) if last else [],
    }


def _nearest_truth(history: list[GroundTruth], stamp: float) -> GroundTruth | None:
    if not history:
        return None
    return min(history, key=lambda t: abs(t.stamp - stamp))


def score_last_seen(
    answers: list[tuple[str, MemoryAnswer]],
    truth_history: list[GroundTruth],
    max_distance: float = 0.03,
) -> dict:
    """Score ``last_seen`` answers, one per (GT object id, answer).

    ``results[0]`` must carry ``position`` [x, y, z] (``centroid`` is accepted
    too) and ``stamp`` (or ``last_seen``), the time memory last saw the object; the position is
    compared with the GT position at that stamp (nearest GT message in time;
    the answer's own stamp when the result has none). A failed answer, an
    empty one or a GT id missing from the ground truth counts as wrong.
    """
    per_object: dict[str, list[dict]] = {}
    errors: list[float] = []
    correct = 0
    for gt_id, answer in answers:
        record: dict = {"correct": False, "error": None, "memory_id": None, "stamp": None}
        first = answer.results[0] if answer.ok and answer.results else None
        position = None if first is None else first.get("position", first.get("centroid"))
        if first is not None and position is not None and len(position) == 3:
            stamp = first.get("stamp", first.get("last_seen", answer.stamp))
            stamp = float(stamp) if isinstance(stamp, int | float) else answer.stamp
            record["memory_id"] = first.get("object_id")
            record["stamp"] = stamp
            truth = _nearest_truth(truth_history, stamp)
            gt = next((o for o in truth.objects if o.id == gt_id), None) if truth else None
            if gt is not None:
                err = _dist(position, gt.position)
                errors.append(err)
                record["error"] = err
                record["correct"] = err <= max_distance
                correct += int(record["correct"])
        per_object.setdefault(gt_id, []).append(record)
    return {
        "answers": len(answers),
        "correct": correct,
        "accuracy": _ratio(correct, len(answers)),
        "error_mean": float(np.mean(errors)) if errors else None,
        "error_max": float(np.max(errors)) if errors else None,
        "max_distance": max_distance,
        "per_object": per_object,
    }
