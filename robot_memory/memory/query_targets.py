"""What a memory query's text and target name: objects ranked by how well
their label, colour and shape match a text, and a query's target resolved to
place ids or object ids. Shared by the queries (:mod:`robot_memory.memory.queries`)
and the relation history's query (:mod:`robot_memory.memory.relation_history`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from robot_memory.memory.object_node import MemoryObject
from robot_memory.memory.text_grounding import score_labels, words

if TYPE_CHECKING:
    from robot_memory.memory.scene_graph import SceneMemory

ABSENT_PENALTY = 0.2  # ranks gone objects below present ones in ``find``
MIN_TARGET_SCORE = 0.45  # text naming an object as an on/in target must score this


class QueryError(ValueError):
    pass


def ranked(
    memory: SceneMemory, text: str, limit: int | None = None
) -> list[tuple[float, MemoryObject]]:
    """(score, object) best first, the first ``limit`` (None: all)."""
    if not text.strip():
        raise QueryError("empty text")
    # score each distinct (label, colour, shape) once, then read the objects of
    # the best kinds only (memory's kind index; ties by id, as a stable sort
    # over every object in id order would give)
    index = memory.kind_index
    distinct = index.kinds()
    if not distinct:
        return []
    per_kind = score_labels(
        memory.embedder,
        text,
        [k[0] for k in distinct],
        [k[1] for k in distinct],
        [k[2] for k in distinct],
    )
    groups: dict[float, list[set[int]]] = {}
    for k, kind in enumerate(distinct):
        for absent in (False, True):
            ids = index.members.get((kind, absent))
            if ids:
                score = float(per_kind[k] - ABSENT_PENALTY * absent)
                groups.setdefault(score, []).append(ids)
    out: list[tuple[float, MemoryObject]] = []
    for score in sorted(groups, reverse=True):  # only the groups read are sorted
        members = groups[score]
        tied = sorted(members[0] if len(members) == 1 else set().union(*members))
        for oid in tied:
            if limit is not None and len(out) >= limit:
                return out
            out.append((score, memory.get(oid)))
    return out


def resolve_target(memory: SceneMemory, target: str) -> list[int | str]:
    """A place id, "table" (every table region), an object id, or text naming one."""
    text = target.strip()
    if not text:
        raise QueryError("this query needs a target")
    places = memory.cell.places
    if any(p.id == text for p in places):
        return [text]
    if text.lstrip("-").isdigit():
        oid = int(text)
        if oid not in {o.id for o in memory.objects(include_absent=True)}:
            raise QueryError(f"unknown object id {oid}")
        return [oid]
    qwords = set(words(text))
    named = [
        p.id for p in places if p.id in qwords or (p.label and p.label.lower() == text.lower())
    ]
    if named:
        return named
    if "table" in qwords:
        return [p.id for p in places if p.kind == "table_region"]
    hits = ranked(memory, text, limit=1)
    if hits and hits[0][0] >= MIN_TARGET_SCORE:
        return [hits[0][1].id]
    raise QueryError(f"unknown target {target!r}: not a place, an object id or a remembered object")


__all__ = ["ABSENT_PENALTY", "MIN_TARGET_SCORE", "QueryError", "ranked", "resolve_target"]


def resolve_target_or_known(
    memory: SceneMemory, text: str, known: Iterable[tuple[int | str | None, str]]
) -> set[int | str]:
    """Like :func:`resolve_target`, and an object id, or a label that only a
    history still holds (``known``: (node, its label then) pairs; the object
    has left memory since), is found too."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return {int(text)}
    try:
        return set(resolve_target(memory, text))
    except QueryError:
        wanted = text.lower()
        found = {node for node, label in known if node is not None and label.lower() == wanted}
        if found:
            return found
        raise
