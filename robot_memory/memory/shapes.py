"""Shape words that may name the same thing (ROS-free).

Perception's labeller and a person use different words for one kind of thing
("cube" / "box", "can" / "cylinder"), and the same word never for two kinds
("bottle" is not "mug"). Memory uses this to refuse taking a sighting of one
kind for another object moved ("seen moved"), the planner to refuse grounding
"the blue bottle" in the blue mug.
"""

from __future__ import annotations

#: Each set: words that may name the same thing. A word may be in several
#: ("cylinder": a can or a bottle, but a can is not a bottle).
SHAPE_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"cube", "box", "block", "cuboid", "brick", "bar", "dice", "die", "cover"}),
    frozenset({"cylinder", "can", "tin", "tube"}),
    frozenset({"cylinder", "bottle"}),
    frozenset({"sphere", "ball", "orb", "marble"}),
    frozenset({"capsule", "pill"}),
    frozenset({"prism", "triangle", "wedge"}),
    frozenset({"mug", "cup"}),
    frozenset({"bowl"}),
    frozenset({"screwdriver", "tool"}),
)
SHAPE_WORDS = frozenset().union(*SHAPE_FAMILIES)


def shape_fits(shape_words: set[str], shape: str) -> bool:
    """Whether an object of ``shape`` may be what ``shape_words`` name: True
    when the shape is no known shape word (unknown, "object") or a family of
    one of the words holds it."""
    if shape not in SHAPE_WORDS:
        return True
    return any(shape in f and shape_words & f for f in SHAPE_FAMILIES)


def shapes_agree(a: str, b: str) -> bool:
    """Two shape words that may name one thing (either unknown: they may)."""
    if a not in SHAPE_WORDS or b not in SHAPE_WORDS:
        return True
    return shape_fits({a}, b)


__all__ = ["SHAPE_FAMILIES", "SHAPE_WORDS", "shape_fits", "shapes_agree"]
