"""The simulation loop without ROS: a thread that steps the cell against the wall
clock and hands each instant's outputs to an ``emit`` callback.

Physics advances in slices of ``SLICE_S`` of sim time, paced so that sim time
runs ``real_time_factor`` times the wall clock (0 = as fast as possible); a
loop that falls more than ``MAX_LAG_S`` behind re-anchors instead of trying to
catch up (counted as an overrun). Cameras render on the loop thread (the GL
context lives there); the links' transforms and the images of one instant
come from one physics state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_memory.health.counters import HealthCounters
from robot_memory.schemas import GroundTruth
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.depth_noise import DepthNoise
from robot_memory.sim.frames import CellFrames, FrameTransform
from robot_memory.sim.runner import DueOutputs, SimulationRunner

#: Loop granularity: physics steps are taken in slices of this much sim time.
SLICE_S = 0.004
#: If the loop falls this far behind the wall clock, it stops trying to catch up.
MAX_LAG_S = 0.1


@dataclass
class CameraRender:
    rgb: np.ndarray
    depth: np.ndarray  # metres
    intrinsics: np.ndarray  # 3x3
    render_s: float  # wall time the render took


@dataclass
class SimOutputs:
    """What one instant ``t`` of sim time has to publish (None: not due)."""

    t: float
    clock: bool = False
    links: list[FrameTransform] | None = None  # dynamic transforms, before the images
    joint_state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # pos, vel, effort
    ground_truth: GroundTruth | None = None
    renders: dict[str, CameraRender] = field(default_factory=dict)


class SimLoop:
    def __init__(
        self,
        runner: SimulationRunner,
        frames: CellFrames,
        cameras: list[str],
        size: tuple[int, int],
        real_time_factor: float,
        health: HealthCounters,
        emit: Callable[[SimOutputs], None],
        keep_running: Callable[[], bool] = lambda: True,
        depth_noise: DepthNoise | None = None,
    ) -> None:
        if real_time_factor < 0:
            raise ValueError(f"real_time_factor must be >= 0, got {real_time_factor}")
        self.runner, self.frames, self.cameras = runner, frames, cameras
        self.width, self.height = size
        self.rtf = real_time_factor
        self.depth_noise = depth_noise
        self.health, self.emit, self.keep_running = health, emit, keep_running
        self.error: BaseException | None = None
        self.rig_ready = threading.Event()
        self._stop = threading.Event()
        self._static: list[FrameTransform] = []
        self._thread = threading.Thread(target=self._loop, name="sim-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def check(self) -> None:
        """Raise if the loop thread failed."""
        if self.error is not None:
            raise RuntimeError(f"simulation loop failed: {self.error!r}") from self.error

    def static_if_changed(self) -> tuple[list[FrameTransform], float] | None:
        """The static transforms and their time when they differ from the last
        returned (tf2's StaticTransformBroadcaster semantics), else None."""
        with self.runner.lock:
            self.runner.physics.sync_kinematics()
            static, t = self.frames.static(self.runner.physics.data), self.runner.time
        if len(static) == len(self._static) and all(
            a.same_as(b) for a, b in zip(static, self._static, strict=True)
        ):
            return None
        self._static = static
        return static, t

    def _loop(self) -> None:
        try:
            rig = CameraRig(self.runner.physics.model, self.width, self.height, self.cameras,
                            self.depth_noise, self.runner.config.seed)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - surfaced by check(): the process exits loudly
            self.error = exc
            self.rig_ready.set()
            return
        self.rig_ready.set()
        try:
            self._run(rig)
        except Exception as exc:  # noqa: BLE001 - surfaced by check()
            self.error = exc
        finally:
            rig.close()

    def _run(self, rig: CameraRig) -> None:
        steps = max(1, round(SLICE_S / self.runner.timestep))
        wall0, sim0 = time.monotonic(), self.runner.time
        rtf_wall, rtf_sim, overruns = wall0, sim0, 0
        while not self._stop.is_set() and self.keep_running():
            due = self.runner.advance(steps)
            t = self.runner.time
            out = self.outputs(due, rig)
            self.emit(out)
            if self.rtf > 0:
                lag = time.monotonic() - (wall0 + (t - sim0) / self.rtf)
                if lag > MAX_LAG_S:  # rendering or the CPU can't keep up: re-anchor
                    overruns += 1
                    self.health.set_value("overruns", overruns)
                    wall0, sim0 = time.monotonic(), t
                elif lag < 0:
                    time.sleep(-lag)
            now = time.monotonic()
            if now - rtf_wall >= 1.0:
                self.health.set_value("real_time_factor", f"{(t - rtf_sim) / (now - rtf_wall):.3f}")
                self.health.set_value("sim_time_s", f"{t:.3f}")
                rtf_wall, rtf_sim = now, t

    def outputs(self, due: DueOutputs, rig: CameraRig) -> SimOutputs:
        """What is due at the runner's present instant."""
        out = SimOutputs(t=self.runner.time, clock=due.clock)
        if due.joint_states or due.cameras:
            with self.runner.lock:  # one state (no reset between) for links and images
                self.runner.physics.sync_kinematics()
                out.links = self.frames.dynamic(self.runner.physics.data)
                for cam in self.cameras if due.cameras else ():
                    t0 = time.monotonic()
                    rgb, depth = rig.render(self.runner.physics, cam)
                    k = rig.intrinsics(cam)
                    out.renders[cam] = CameraRender(rgb, depth, k, time.monotonic() - t0)
        if due.joint_states:
            _, pos, vel, eff = self.runner.physics.joint_state()
            out.joint_state = (pos, vel, eff)
        if due.ground_truth:
            out.ground_truth = self.runner.ground_truth()
        return out
