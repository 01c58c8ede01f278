"""The labeller of the first round: hand-tuned rules over footprint, height and
top flatness (``appearance.shape_name``). It knows only the primitives' words
(cube, cylinder, sphere, block, capsule, prism, box); kept as the ``rules``
labeller for comparison and for cells of primitives."""

from __future__ import annotations

from robot_memory.perception.appearance import shape_features, shape_name
from robot_memory.perception.labelling.base import UNKNOWN, Label, ObjectCrop


class ShapeRuleLabeller:
    categories = ("cube", "cylinder", "sphere", "block", "capsule", "prism", "box")

    def label(self, crop: ObjectCrop) -> Label:
        if len(crop.points) < 3:
            return Label(UNKNOWN, 0.0, "rules")
        word = shape_name(shape_features(crop.points, crop.support_z))
        return Label(word, 0.7 if word == UNKNOWN else 1.0, "rules")

    def close(self) -> None:
        pass
