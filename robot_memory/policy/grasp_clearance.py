"""Where the fingers come down: a top-down grasp kept clear of the neighbours (ROS-free).

A top-down grasp closes across an object, and with the hand open its two
fingers land ``open_width / 2`` either side of the grasp point. In clutter a
neighbour often stands there: a screwdriver lying beside a can, a box against
a bottle. The finger lands on the neighbour, the hand stops short, and the
gripper closes on nothing. What a person does: take the handle a little
further along, or turn the hand a little.

:func:`clear_grasp` scores grasps around the nominal one, the point slid along
the object's long axis (within ``max_slide``: the caller says how much of the
object is good to hold) and, for a narrow object, the hand turned by up to
``max_turn`` (the fingers still close across it), by the clearance between
the two finger pads and every neighbour's footprint, on the table plane. It
keeps the nominal grasp while that is clear by ``enough``, else takes the
clearest, the nearest to the nominal among equals.

Footprints are circles (round things) or oriented rectangles, in the table
plane; the finger pads are rectangles (``FINGER_PAD``, the Panda's). The same
function serves the scripted expert (footprints from the simulator) and the
policy's goal grounding (footprints from memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: A Panda finger pad seen from above [m]: its size along the long axis of the
#: grasp (the hand's x) and along the closing direction (sim/panda/panda.xml).
FINGER_PAD = (0.020, 0.018)
#: Clearance at which a grasp is clear enough: the nominal one is kept [m].
ENOUGH_CLEARANCE = 0.008
#: Steps of the search: slides [m] and turns [rad].
SLIDE_STEP = 0.005
TURN_STEP = np.radians(10.0)
#: How far a grasp may move from the nominal one, by category word: (slide
#: along the long axis [m], turn of the hand [rad]). A screwdriver's handle
#: (8.2-8.8 cm) leaves a 2 cm pad 3 cm either side of its middle, and a hand
#: turned 30 degrees still closes across it (2.8-3 cm between the fingers); a
#: box keeps both pads on its long faces within 1.5 cm, and is not turned (the
#: fingers would close on its edges). Round things need neither: any yaw
#: closes across them (the expert turns them across a neighbour already).
GRASP_FREEDOM = {"screwdriver": (0.030, np.radians(30.0)), "box": (0.015, 0.0)}


@dataclass(frozen=True)
class Footprint:
    """An object's footprint on the table: a circle (``radius`` > 0) or a
    rectangle (``half`` extents along its own axes, rotated by ``yaw``)."""

    center: tuple[float, float]
    radius: float = 0.0
    half: tuple[float, float] = (0.0, 0.0)
    yaw: float = 0.0

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance [m] from each point (n, 2) to the footprint (0 inside)."""
        d = np.asarray(points, float) - np.asarray(self.center, float)
        if self.radius > 0:
            return np.maximum(np.linalg.norm(d, axis=1) - self.radius, 0.0)
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        local = np.abs(d @ np.array([[c, -s], [s, c]]))
        outside = np.maximum(local - np.asarray(self.half, float), 0.0)
        return np.linalg.norm(outside, axis=1)


@dataclass(frozen=True)
class Grasp:
    point: tuple[float, float]  # where the fingers close, on the table plane [m]
    yaw: float  # hand yaw [rad]: the fingers close along yaw + pi/2
    clearance: float  # [m] from the finger pads to the nearest neighbour (capped)
    slide: float = 0.0  # [m] along the long axis from the nominal point
    turn: float = 0.0  # [rad] from the nominal yaw


def pad_outline(point, yaw: float, open_width: float, samples: int = 5) -> np.ndarray:
    """Points on the outlines of both finger pads (2 * 4 * samples, 2)."""
    along = np.array([np.cos(yaw), np.sin(yaw)])  # the hand's x: the long axis
    closing = np.array([-along[1], along[0]])
    length, thick = FINGER_PAD
    t = np.linspace(-0.5, 0.5, samples)
    corners = []
    for side in (-1.0, 1.0):
        centre = np.asarray(point, float) + side * (open_width / 2 + thick / 2) * closing
        for u in t:  # the four edges, ``samples`` points each
            corners += [
                centre + u * length * along + 0.5 * thick * closing,
                centre + u * length * along - 0.5 * thick * closing,
                centre + 0.5 * length * along + u * thick * closing,
                centre - 0.5 * length * along + u * thick * closing,
            ]
    return np.array(corners)


def clearance(point, yaw: float, open_width: float, neighbours: Sequence[Footprint]) -> float:
    """The smallest distance [m] from the finger pads to any neighbour (inf: none)."""
    if not neighbours:
        return float("inf")
    pads = pad_outline(point, yaw, open_width)
    return float(min(n.distance(pads).min() for n in neighbours))


def clear_grasp(
    point,
    yaw: float,
    neighbours: Sequence[Footprint],
    open_width: float,
    max_slide: float = 0.0,
    max_turn: float = 0.0,
    enough: float = ENOUGH_CLEARANCE,
) -> Grasp:
    """The grasp nearest the nominal (``point``, ``yaw``) whose finger pads are
    clear of ``neighbours`` by ``enough``, else the clearest one within
    ``max_slide`` [m] along the long axis and ``max_turn`` [rad]."""
    point = np.asarray(point, float)[:2]
    along = np.array([np.cos(yaw), np.sin(yaw)])
    n_slide = int(np.floor(max(max_slide, 0.0) / SLIDE_STEP + 1e-9))
    n_turn = int(np.floor(max(max_turn, 0.0) / TURN_STEP + 1e-9))
    best: tuple[tuple[float, float], Grasp] | None = None
    for i in range(-n_slide, n_slide + 1):
        for j in range(-n_turn, n_turn + 1):
            slide, turn = i * SLIDE_STEP, j * TURN_STEP
            p = point + slide * along
            gap = min(clearance(p, yaw + turn, open_width, neighbours), enough)
            gap = round(gap, 3)  # a millimetre more is not worth a move
            # clearer first; among equally clear (all ``enough``), the least moved
            key = (gap, -(abs(slide) / SLIDE_STEP + abs(turn) / TURN_STEP))
            if best is None or key > best[0]:
                best = (key, Grasp((float(p[0]), float(p[1])), yaw + turn, gap, slide, turn))
    assert best is not None
    return best[1]


__all__ = [
    "ENOUGH_CLEARANCE",
    "FINGER_PAD",
    "GRASP_FREEDOM",
    "Footprint",
    "Grasp",
    "clear_grasp",
    "clearance",
    "pad_outline",
]
