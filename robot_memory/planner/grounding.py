"""Ground noun phrases in memory: words -> memory object ids and place ids (ROS-free).

Objects are ranked with :func:`~robot_memory.memory.text_grounding.score_labels`
(the shipped MiniLM embedder plus exact colour/shape words) after a small
synonym expansion ("ball" -> sphere, "can" -> cylinder: the embedder alone
reads "can" as a verb). A colour the phrase names that the object does not
have costs ``colour_penalty`` (a neighbouring colour, ``NEAR_COLOURS``: a black
handle a camera sees as grey, a third of it); a shape word the phrase names
that no ``SHAPE_FAMILIES`` entry shares with the object's shape costs
``shape_penalty`` ("the blue bottle" is not the blue mug, though a primitive
"blue cylinder" may be the blue can); an object memory believes gone costs
``absent_penalty``. The best one must score ``min_score`` and beat the
runner-up by ``margin``, else ``PlanningError("no such object" | "ambiguous")``
with the candidates in the detail. Only ids of the World are ever returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_memory.memory.shapes import SHAPE_WORDS, shape_fits
from robot_memory.memory.text_grounding import TextEmbedder, score_labels, words
from robot_memory.planner.plan import PlanningError
from robot_memory.planner.world import World
from robot_memory.schemas import MemoryObjectMsg

COLOURS = frozenset(
    {"red", "blue", "green", "yellow", "orange", "purple", "white", "black", "grey", "brown"}
    | {"pink"}
)
COLOUR_ALIASES = {"gray": "grey", "violet": "purple", "silver": "grey"}
#: word -> the shape word memory uses (the embedder misses some of these).
SHAPE_SYNONYMS = {
    "ball": "sphere",
    "orb": "sphere",
    "marble": "sphere",
    "can": "cylinder",
    "tin": "cylinder",
    "tube": "cylinder",
    "bottle": "cylinder",
    "brick": "block",
    "bar": "block",
    "cuboid": "block",
    "dice": "cube",
    "die": "cube",
    "pill": "capsule",
    "triangle": "prism",
    "wedge": "prism",
}
#: Colour words a camera confuses under shading: a mismatch costs a third.
NEAR_COLOURS = frozenset({frozenset({"black", "grey"}), frozenset({"grey", "white"})})
CONTAINER_WORDS = frozenset({"box", "cover", "lid", "container", "crate", "cup", "bowl", "case"})
PLURALS = {"boxes": "box", "spheres": "sphere", "cubes": "cube", "prisms": "prism"}
#: Words naming a side of the table -> the suffix of the table-region place id.
SIDE_WORDS = {
    "left": "left",
    "right": "right",
    "middle": "centre",
    "centre": "centre",
    "center": "centre",
    "central": "centre",
}
BIN_WORDS = frozenset({"bin", "trash", "rubbish", "basket", "garbage", "waste", "wastebasket"})


#: Words that name no particular object ("what was under the box").
GENERIC_WORDS = frozenset({"what", "whatever", "something", "anything", "which", "whichever"})


def colour_word(w: str) -> str:
    return COLOUR_ALIASES.get(w, w)


def canonical_words(text: str) -> list[str]:
    """Words of ``text`` with plurals, colour aliases and shape synonyms resolved."""
    out = []
    for w in words(text):
        if w in GENERIC_WORDS:
            continue
        w = PLURALS.get(w, w[:-1] if w.endswith("s") and len(w) > 3 and w[-2] != "s" else w)
        out.append(SHAPE_SYNONYMS.get(colour_word(w), colour_word(w)))
    return out


def near_colours(a: str, b: str) -> bool:
    """Colour words a camera confuses under shading (``NEAR_COLOURS``)."""
    return frozenset({colour_word(a), colour_word(b)}) in NEAR_COLOURS


def expand(text: str) -> str:
    """The phrase with its canonical words appended (for the embedder and word bonus)."""
    ws = words(text)
    extra = [c for c in canonical_words(text) if c not in ws]
    return " ".join(ws + extra)


@dataclass
class Match:
    obj: MemoryObjectMsg
    score: float

    def describe(self) -> str:
        gone = ", gone" if self.obj.status == "absent" else ""
        return f"#{self.obj.id} {self.obj.label} ({self.score:.2f}{gone})"


#: A name memory's label votes give an object at least this share of: it may
#: be called that too (scored less, by the share it lacks).
VOTE_SHARE_MIN = 0.3


def voted_names(o: MemoryObjectMsg) -> list[tuple[str, str, str, float]]:
    """``(label, colour, shape, share of the votes)`` of each name the object
    may go by: its label, and any other label with ``VOTE_SHARE_MIN`` of its
    votes (labels are "<colour> <shape>")."""
    total = sum(o.label_votes.values())
    if total <= 0.0 or o.label not in o.label_votes:
        return [(o.label, o.color, o.shape, 1.0)]
    out = [(o.label, o.color, o.shape, o.label_votes[o.label] / total)]
    for label, votes in o.label_votes.items():
        colour, _, shape = label.partition(" ")
        if label != o.label and votes / total >= VOTE_SHARE_MIN and shape:
            out.append((label, colour, shape, votes / total))
    return out


class Grounder:
    """Phrases -> memory objects and places of one World."""

    def __init__(
        self,
        embedder: TextEmbedder | None = None,
        min_score: float = 0.42,
        margin: float = 0.08,
        absent_penalty: float = 0.2,
        colour_penalty: float = 0.7,
        shape_penalty: float = 0.6,
        vote_weight: float = 0.5,
        sure_shape_votes: float = 2.0,
    ) -> None:
        self.embedder = embedder or TextEmbedder()
        self.min_score = min_score
        self.margin = margin
        self.absent_penalty = absent_penalty
        self.colour_penalty = colour_penalty
        self.shape_penalty = shape_penalty
        self.vote_weight = vote_weight
        self.sure_shape_votes = sure_shape_votes

    def shape_certainty(self, obj: MemoryObjectMsg) -> float:
        """How much the object's shape words are to be trusted: its label vote
        mass over ``sure_shape_votes``, at most 1 (an object memory has seen
        three times at the edge of a view, 0.6 votes, holds its shape word
        loosely: a mug's rim seen from above reads as a bowl); 1 without votes."""
        total = sum(obj.label_votes.values())
        if total <= 0.0 or self.sure_shape_votes <= 0.0:
            return 1.0
        return min(1.0, total / self.sure_shape_votes)

    # -- objects ---------------------------------------------------------------
    def rank(self, text: str, objects: list[MemoryObjectMsg]) -> list[Match]:
        """Objects by how well ``text`` fits them, best first. Every name memory's
        label votes give an object (``VOTE_SHARE_MIN`` of its votes or more: a
        mug seen as a box in some views) is scored, each losing ``vote_weight``
        per unit of vote share it lacks; the object keeps its best. A shape word
        the text does not fit costs ``shape_penalty`` times the object's
        :meth:`shape_certainty`."""
        if not objects:
            return []
        query = expand(text)
        colours = {colour_word(w) for w in words(text)} & COLOURS
        shapes = {w[:-1] if w[:-1] in SHAPE_WORDS else w for w in words(text)} & SHAPE_WORDS
        named = [(k, *name) for k, o in enumerate(objects) for name in voted_names(o)]
        scores = score_labels(
            self.embedder,
            query,
            [label for _, label, _, _, _ in named],
            [colour_word(colour) for _, _, colour, _, _ in named],
            [shape for _, _, _, shape, _ in named],
        )
        best = [-np.inf] * len(objects)
        certainty = [self.shape_certainty(o) for o in objects]
        for (k, _, colour, shape, share), s in zip(named, scores, strict=True):
            s = float(s) - self.vote_weight * (1.0 - share)
            colour = colour_word(colour)
            if colours and colour not in colours:
                near = any(near_colours(colour, c) for c in colours)
                s -= self.colour_penalty / 3 if near else self.colour_penalty
            if shapes and not shape_fits(shapes, shape):
                s -= self.shape_penalty * certainty[k]
            best[k] = max(best[k], s)
        out = []
        for o, s in zip(objects, best, strict=True):
            if o.status == "absent":
                s -= self.absent_penalty
            out.append(Match(o, s))
        out.sort(key=lambda m: (-m.score, m.obj.id))
        return out

    def ground(
        self, text: str, world: World, candidates: list[MemoryObjectMsg] | None = None
    ) -> tuple[Match, str]:
        """The one object ``text`` means, and a note saying why; raises PlanningError."""
        if not canonical_words(text):
            raise PlanningError("not understood", f"which object is {text!r}?")
        pool = list(world.graph.objects) if candidates is None else candidates
        ranked = self.rank(text, pool)
        shown = ", ".join(m.describe() for m in ranked[:3]) or "memory is empty"
        if not ranked or ranked[0].score < self.min_score:
            raise PlanningError("no such object", f"nothing in memory is {text!r}; best: {shown}")
        best = ranked[0]
        if len(ranked) > 1 and best.score - ranked[1].score < self.margin:
            raise PlanningError("ambiguous", f"{text!r} could be {shown}")
        why = f"{text!r} -> {best.describe()}"
        if len(ranked) > 1:
            why += f"; next {ranked[1].describe()}"
        return best, why

    def matching_all(self, text: str, world: World) -> tuple[list[MemoryObjectMsg], str]:
        """Every present non-container object the words (colours, shapes) describe."""
        ws = canonical_words(text)
        colours = {w for w in ws if w in COLOURS}
        rest = [w for w in ws if w not in COLOURS]
        pool = world.present()
        if colours:
            pool = [o for o in pool if colour_word(o.color) in colours]
        if rest:
            shapes = set(rest)
            by_word = [o for o in pool if shapes & ({o.shape} | set(canonical_words(o.label)))]
            if by_word:
                pool = by_word
            else:  # "all the balls" with no exact word: the embedder decides per object
                ranked = self.rank(" ".join(rest), pool)
                pool = [m.obj for m in ranked if m.score >= self.min_score]
        what = " ".join(sorted(colours) + rest) or "everything"
        return pool, f"every {what} -> " + (", ".join(f"#{o.id} {o.label}" for o in pool) or "none")

    def container(self, text: str, world: World) -> tuple[MemoryObjectMsg, str]:
        """The container object (box, cover, lid) ``text`` names."""
        conts = [o for o in world.graph.objects if o.container]
        if not conts:
            raise PlanningError("no such object", f"memory holds no box or cover ({text!r})")
        generic = set(canonical_words(text)) <= CONTAINER_WORDS | COLOURS
        present = [o for o in conts if o.status != "absent"]
        if generic and len(present) == 1:
            return present[0], f"{text!r} -> #{present[0].id} {present[0].label} (the only cover)"
        best, why = self.ground(text, world, conts)
        return best.obj, why

    def close_containers(self, text: str, world: World) -> list[MemoryObjectMsg]:
        """The present containers ``text`` fits about as well as the best one
        (within ``margin``, above ``min_score``): what "ambiguous" was between."""
        present = [o for o in world.graph.objects if o.container and o.status != "absent"]
        ranked = self.rank(text, present)
        if not ranked or ranked[0].score < self.min_score:
            return []
        return [m.obj for m in ranked if ranked[0].score - m.score < self.margin]

    # -- places ----------------------------------------------------------------
    def place(self, text: str, world: World) -> str | None:
        """A place id of the cell ``text`` names ("bin", "left side of the table"), or None."""
        t = text.strip().lower()
        if t in world.places:
            return t
        ws = set(words(t))
        for pid, p in world.places.items():
            if p.label and p.label.lower() == t:
                return pid
        if ws & BIN_WORDS:
            bins = [pid for pid, p in world.places.items() if p.kind == "container"]
            named = [pid for pid in bins if pid in ws]
            if named or len(bins) == 1:
                return (named or bins)[0]
        sides = {SIDE_WORDS[w] for w in ws if w in SIDE_WORDS}
        if len(sides) == 1:
            side = sides.pop()
            regions = [
                pid
                for pid, p in world.places.items()
                if p.kind == "table_region" and pid.endswith(side)
            ]
            if len(regions) == 1:
                return regions[0]
        for pid in world.places:
            if pid in ws:
                return pid
        return None


__all__ = [
    "COLOURS",
    "SHAPE_SYNONYMS",
    "Grounder",
    "Match",
    "canonical_words",
    "colour_word",
    "expand",
]
