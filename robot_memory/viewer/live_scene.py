"""The stack's state as a Rerun recording (ROS-free): the cameras, the arm,
memory's objects as 3D boxes with labels and status, the relations between
them, the places, and the current plan and skill as a text panel.

:class:`LiveScene` writes to a :class:`rerun.RecordingStream`; :func:`serve`
makes one that serves Rerun's own web viewer from this machine (the viewer's
files ship in the ``rerun-sdk`` wheel: nothing is fetched), so a browser on
``http://<host>:<web_port>`` shows the stack live. The viewer node
(:mod:`robot_memory.nodes.viewer_node`) feeds it from the topics; a bag is
shown by replaying it (``robot-memory replay BAG``) beside the viewer.

Entity paths (the blueprint lays them out; Rerun's own panels show them all):

* ``world/robot``: the arm's link origins joined (from ``/tf``);
* ``world/memory/objects``: one box per remembered object, labelled
  ``#id label (status)``, coloured by status (visible, remembered, absent);
* ``world/memory/places``, ``world/memory/relations`` (arrows subject -> target);
* ``world/cameras/<cam>``: each camera's pose and pinhole;
* ``cameras/<cam>``: its colour image (JPEG passed through, never re-encoded);
* ``status``: the instruction, the plan's steps (the current one marked), the
  planner's state and the policy's skill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np
import rerun as rr
import rerun.blueprint as rrb

from robot_memory.planner.plan import Plan, PlannerStatusMsg
from robot_memory.schemas import MemoryObjectMsg, PlaceMsg, PolicyStatusMsg, SceneGraphMsg

#: Box colours by memory status (RGB): seen in the latest frame, believed there, gone.
STATUS_COLORS = {"visible": (46, 204, 113), "remembered": (241, 196, 15), "absent": (127, 140, 141)}
RELATION_COLOR = (52, 152, 219)
PLACE_COLOR = (155, 89, 182)
ROBOT_COLOR = (236, 240, 241)
TIMELINE = "stamp"  # message stamps (sim or robot time), seconds


def blueprint(cameras: list[str]) -> rrb.Blueprint:
    """The 3D scene on the left; the cameras and the status text on the right."""
    right = [rrb.Spatial2DView(origin=f"cameras/{cam}", name=cam) for cam in cameras]
    right.append(rrb.TextDocumentView(origin="status", name="plan and skill"))
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(origin="world", name="memory"),
            rrb.Vertical(*right),
            column_shares=[3, 2],
        ),
        collapse_panels=True,
    )


def serve(
    cameras: list[str],
    web_port: int,
    grpc_port: int,
    memory_limit: str = "256MiB",
    application_id: str = "robot_memory",
) -> tuple[rr.RecordingStream, str]:
    """A recording served over gRPC with Rerun's web viewer beside it; returns
    it and the address to open. ``memory_limit``: what the server keeps for late
    browsers (oldest data dropped first)."""
    recording = rr.RecordingStream(application_id)
    grpc_url = recording.serve_grpc(
        grpc_port=grpc_port,
        default_blueprint=blueprint(cameras),
        server_memory_limit=memory_limit,
        newest_first=True,  # a browser opened late shows the present first, then the history
    )
    rr.serve_web_viewer(web_port=web_port, open_browser=False, connect_to=grpc_url)
    return recording, viewer_url(web_port, grpc_url)


def viewer_url(web_port: int, grpc_url: str, host: str = "localhost") -> str:
    proxy = grpc_url.replace("127.0.0.1", host).replace("0.0.0.0", host)
    return f"http://{host}:{web_port}/?url={quote(proxy, safe='')}"


@dataclass
class StatusText:
    """What the ``status`` panel says; rebuilt whenever a part changes."""

    plan: Plan | None = None
    planner: PlannerStatusMsg | None = None
    policy: PolicyStatusMsg | None = None
    lines: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = []
        if self.plan is not None:
            out.append(f"### {self.plan.instruction or self.plan.id}")
            out.append(f"plan `{self.plan.id}` by {self.plan.backend}, attempt {self.plan.attempt}")
            current = self.planner.step if self.planner is not None else -1
            for i, step in enumerate(self.plan.steps):
                mark = "**->**" if i == current else "-"
                why = f": {step.why}" if step.why else ""
                out.append(f"{mark} {i + 1}. {step.describe()}{why}")
            if self.plan.answer:
                out.append(f"answer: {self.plan.answer}")
        if self.planner is not None:
            p = self.planner
            why = f" ({p.reason})" if p.reason else ""
            step = f", step {p.step + 1}/{p.n_steps} {p.skill}" if p.n_steps else ""
            out.append(f"\n**planner**: {p.state}{why}{step}")
        if self.policy is not None:
            s = self.policy
            target = f" -> {s.target}" if s.target else ""
            obj = f" #{s.object_id}" if s.object_id is not None else ""
            out.append(f"**policy**: {s.skill or '-'}{obj}{target}: {s.state}, {s.chunks} chunks")
        return "\n\n".join(out) if out else "waiting for the planner and the policy ..."


class LiveScene:
    """Logs the stack's state to ``recording``; every method takes the
    message's own stamp [s] for the ``stamp`` timeline."""

    def __init__(
        self,
        recording: rr.RecordingStream,
        jpeg_quality: int = 80,
        image_rate_hz: float = 5.0,
        robot_rate_hz: float = 10.0,
    ) -> None:
        self.rec = recording
        self.jpeg_quality = jpeg_quality  # raw frames go to the browser as JPEG (10x smaller)
        self.status = StatusText()
        self._image_gap_s = 1.0 / max(image_rate_hz, 1e-3)
        self._robot_gap_s = 1.0 / max(robot_rate_hz, 1e-3)
        self._last_image: dict[str, float] = {}
        self._last_robot = -np.inf

    def wants_image(self, cam: str, stamp: float) -> bool:
        """Whether a frame of ``cam`` at ``stamp`` goes to the browser (at most
        ``image_rate_hz`` per camera; a stamp that jumps back, a replay, restarts)."""
        if abs(stamp - self._last_image.get(cam, -np.inf)) < self._image_gap_s:
            return False
        self._last_image[cam] = stamp
        return True

    def wants_robot(self, stamp: float) -> bool:
        """Whether the arm is redrawn at ``stamp`` (at most ``robot_rate_hz``)."""
        if abs(stamp - self._last_robot) < self._robot_gap_s:
            return False
        self._last_robot = stamp
        return True

    def _at(self, stamp: float) -> None:
        self.rec.set_time(TIMELINE, duration=max(float(stamp), 0.0))

    # -- cameras -----------------------------------------------------------------------
    def camera_image(
        self, cam: str, stamp: float, rgb: np.ndarray | None = None, jpeg: bytes | None = None
    ) -> None:
        """A colour frame: RGB pixels (sent on as JPEG), or JPEG bytes as they
        came off the wire."""
        self._at(stamp)
        if jpeg is not None:
            self.rec.log(f"cameras/{cam}", rr.EncodedImage(contents=jpeg, media_type="image/jpeg"))
        elif rgb is not None:
            image = rr.Image(np.ascontiguousarray(rgb), color_model="RGB")
            self.rec.log(f"cameras/{cam}", image.compress(jpeg_quality=self.jpeg_quality))

    def camera_pose(
        self,
        cam: str,
        stamp: float,
        position: np.ndarray,
        quat_wxyz: np.ndarray,
        k: np.ndarray,
        size: tuple[int, int],
    ) -> None:
        """world <- the camera's optical frame, and its pinhole (K, width x height)."""
        self._at(stamp)
        w, x, y, z = (float(v) for v in quat_wxyz)
        path = f"world/cameras/{cam}"
        rotation = rr.Quaternion(xyzw=[x, y, z, w])
        self.rec.log(path, rr.Transform3D(translation=position, quaternion=rotation))
        k = np.asarray(k, dtype=float).reshape(3, 3)
        pinhole = rr.Pinhole(image_from_camera=k, resolution=list(size), image_plane_distance=0.1)
        self.rec.log(path, pinhole)

    # -- the arm -----------------------------------------------------------------------
    def robot(self, stamp: float, link_origins: list[np.ndarray]) -> None:
        """The arm as its link origins (base to hand) joined by a line."""
        if len(link_origins) < 2:
            return
        self._at(stamp)
        points = np.asarray(link_origins, dtype=float)
        self.rec.log(
            "world/robot",
            rr.LineStrips3D([points], colors=[ROBOT_COLOR], radii=0.02),
            rr.Points3D(points, colors=[ROBOT_COLOR], radii=0.03),
        )

    # -- memory ------------------------------------------------------------------------
    def scene_graph(self, graph: SceneGraphMsg) -> None:
        """Objects, places and relations of one /memory/scene_graph."""
        self._at(graph.stamp)
        objects = [_bounds(o) for o in graph.objects]
        places = [_bounds(p) for p in graph.places]
        ids = [str(o.id) for o in graph.objects] + [p.id for p in graph.places]
        centers = {i: (lo + hi) / 2 for i, (lo, hi) in zip(ids, objects + places, strict=True)}
        self.rec.log(
            "world/memory/objects",
            _boxes(
                objects,
                [f"#{o.id} {o.label} ({o.status})" for o in graph.objects],
                [STATUS_COLORS.get(o.status, STATUS_COLORS["absent"]) for o in graph.objects],
                fill_mode="solid",
            ),
        )
        self.rec.log(
            "world/memory/places",
            _boxes(places, [p.label or p.id for p in graph.places], [PLACE_COLOR] * len(places)),
        )
        arrows = [
            (centers[str(r.subject)], centers[str(r.target)], r.relation)
            for r in graph.relations
            if r.relation != "near" and str(r.subject) in centers and str(r.target) in centers
        ]
        self.rec.log(
            "world/memory/relations",
            rr.Arrows3D(
                origins=[a for a, _, _ in arrows] or np.zeros((0, 3)),
                vectors=[b - a for a, b, _ in arrows] or np.zeros((0, 3)),
                labels=[text for _, _, text in arrows],
                colors=[RELATION_COLOR] * len(arrows),
            ),
        )

    # -- plan and skill ----------------------------------------------------------------
    def plan(self, plan: Plan, stamp: float) -> None:
        self.status.plan = plan
        self._status(stamp)

    def planner_status(self, status: PlannerStatusMsg) -> None:
        self.status.planner = status
        self._status(status.stamp)

    def policy_status(self, status: PolicyStatusMsg) -> None:
        self.status.policy = status
        self._status(status.stamp)

    def _status(self, stamp: float) -> None:
        self._at(stamp)
        text = rr.TextDocument(self.status.markdown(), media_type=rr.MediaType.MARKDOWN)
        self.rec.log("status", text)


def _bounds(node: MemoryObjectMsg | PlaceMsg) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(node.bbox_min, dtype=float), np.asarray(node.bbox_max, dtype=float)


def _boxes(
    bounds: list[tuple[np.ndarray, np.ndarray]],
    labels: list[str],
    colors: list[tuple[int, int, int]],
    fill_mode: str = "majorwireframe",
) -> rr.Boxes3D:
    """Axis-aligned boxes from (min, max) corners (at least 1 cm across)."""
    if not bounds:
        return rr.Boxes3D(centers=np.zeros((0, 3)), half_sizes=np.zeros((0, 3)))
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    half = np.maximum((hi - lo) / 2, 0.005)
    return rr.Boxes3D(centers=(lo + hi) / 2, half_sizes=half, labels=labels, colors=colors,
                      fill_mode=fill_mode)  # fmt: skip
