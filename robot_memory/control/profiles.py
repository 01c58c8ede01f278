"""Time scalings shared by every scripted motion (the look skill, the scripted
expert): ROS-free, simulator-free."""

from __future__ import annotations

import numpy as np


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk progress 0..1 for normalised time ``tau`` in 0..1 (zero
    velocity and acceleration at both ends)."""
    return 10 * tau**3 - 15 * tau**4 + 6 * tau**5


__all__ = ["min_jerk"]
