"""Which joint states the safety layer trusts (ROS-free).

Any process on the DDS domain can publish ``/joint_states``. The guard keeps
the last *trusted* measurement and accepts a new one only when it is

* finite and inside the position limits (plus ``limit_tolerance``: encoders
  read a hair past a limit);
* from the publisher it trusts, when the transport can tell publishers apart
  (DDS gives each writer a GID): the first publisher is trusted; another is
  adopted only after the trusted one was silent for ``publisher_timeout_s``;
* physically reachable from the last trusted state: no joint moved more than
  ``velocity_factor`` x its velocity limit x the time since, plus
  ``jump_tolerance`` (a spoofed state 1.5 rad away is a teleport).

Times are the receiver's clock, never the message's own stamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_memory.control.retiming import MotionLimits


class StateRejected(ValueError):  # noqa: N818 (mirrors ChunkRejected)
    """A joint state the guard does not trust; ``kind`` is short and stable."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class StateGuardConfig:
    limit_tolerance: float = 0.02  # [rad] past a position limit still believed
    jump_tolerance: float = 0.05  # [rad] on top of what the velocity limit allows
    velocity_factor: float = 1.5  # x the velocity limit between two measurements
    publisher_timeout_s: float = 0.5  # silence after which another publisher may take over

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0")
            object.__setattr__(self, name, value)
        if self.velocity_factor < 1.0:
            raise ValueError("velocity_factor must be >= 1")


class JointStateGuard:
    def __init__(self, limits: MotionLimits, config: StateGuardConfig | None = None) -> None:
        self.limits = limits
        self.config = config or StateGuardConfig()
        self.q: np.ndarray | None = None
        self.time = -np.inf
        self.publisher: bytes | None = None

    def accept(self, q: np.ndarray, now: float, publisher: bytes | None = None) -> np.ndarray:
        """The measurement ``q`` if trusted (it becomes the trusted state);
        raises :class:`StateRejected` otherwise, the trusted state unchanged."""
        cfg = self.config
        q = np.asarray(q, dtype=float).reshape(len(self.limits.lower))
        if not np.all(np.isfinite(q)):
            raise StateRejected("non-finite joint_states", "joint_states with NaN or inf")
        beyond = (q < self.limits.lower - cfg.limit_tolerance) | (
            q > self.limits.upper + cfg.limit_tolerance
        )
        if np.any(beyond):
            j = int(np.argmax(beyond))
            raise StateRejected(
                "joint_states beyond limits",
                f"joint {j + 1} at {q[j]:.4g} rad, limits "
                f"[{self.limits.lower[j]:.4f}, {self.limits.upper[j]:.4f}]",
            )
        since = now - self.time
        if self.q is not None:
            if (
                publisher is not None
                and self.publisher is not None
                and publisher != self.publisher
                and since < cfg.publisher_timeout_s
            ):
                raise StateRejected(
                    "unexpected publisher",
                    "joint_states from a second publisher while the trusted one is live",
                )
            allowed = self.limits.velocity * cfg.velocity_factor * max(since, 0.0)
            jump = np.abs(q - self.q)
            over = jump > allowed + cfg.jump_tolerance
            if np.any(over):
                j = int(np.argmax(over))
                raise StateRejected(
                    "joint_states teleport",
                    f"joint {j + 1} moved {jump[j]:.3f} rad in {max(since, 0.0):.3f} s",
                )
        self.q, self.time = q, now
        if publisher is not None:
            self.publisher = publisher
        return q

    def fresh(self, now: float, max_age_s: float) -> np.ndarray | None:
        """The trusted state if it is at most ``max_age_s`` old, else None."""
        if self.q is None or now - self.time > max_age_s:
            return None
        return self.q
