"""Colour words as identity cues (ROS-free). White, grey and black are one
family: the same white cover reads grey or black in shade."""

from __future__ import annotations

ACHROMATIC = frozenset({"white", "grey", "gray", "black"})
#: Colour words a shaded part of anything can read as.
SHADE = frozenset({"black"})


def colour_family(colour: str) -> str:
    return "achromatic" if colour in ACHROMATIC else colour


def same_colour(a: str, b: str) -> bool:
    return bool(a) and bool(b) and colour_family(a) == colour_family(b)
