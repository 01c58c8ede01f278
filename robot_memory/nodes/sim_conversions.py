"""robot_memory_interfaces messages <-> the core's validated types for the
simulator's own topics: ground truth, reset, the scripted expert (node layer).

``*_from_msg`` validates like the JSON it replaces did and raises
:class:`robot_memory.schemas.PayloadError` (``invalid payload``) on NaN, a
value out of bounds or a wrong id.
"""

from __future__ import annotations

from geometry_msgs.msg import Vector3
from robot_memory_interfaces import msg as rmi

from robot_memory.nodes.conversions import from_time, header
from robot_memory.nodes.memory_conversions import point, pose, quat_wxyz, xyz
from robot_memory.payload_codec import validate_payload
from robot_memory.schemas import ExpertStatus, ExpertTask, GroundTruth, SimReset


def ground_truth_to_msg(truth: GroundTruth, frame_id: str = "world") -> rmi.GroundTruth:
    return rmi.GroundTruth(
        header=header(truth.stamp, frame_id),
        episode=truth.episode,
        seed=truth.seed,
        scene=truth.scene,
        objects=[
            rmi.GroundTruthObject(
                id=o.id,
                kind=o.kind,
                shape=o.shape,
                color=o.color,
                label=o.label,
                pose=pose(o.position, o.quaternion),
                size=Vector3(x=o.size[0], y=o.size[1], z=o.size[2]),
                grasp_point=[] if o.grasp_point is None else [point(o.grasp_point)],
                support=o.support or "",
                grasped=o.grasped,
            )
            for o in truth.objects
        ],
    )


def ground_truth_from_msg(msg: rmi.GroundTruth) -> GroundTruth:
    data = {
        "stamp": from_time(msg.header.stamp),
        "episode": msg.episode,
        "seed": msg.seed,
        "scene": msg.scene,
        "objects": [
            {
                "id": o.id,
                "kind": o.kind,
                "shape": o.shape,
                "color": o.color,
                "label": o.label,
                "position": xyz(o.pose.position),
                "quaternion": quat_wxyz(o.pose),
                "size": (o.size.x, o.size.y, o.size.z),
                "grasp_point": xyz(o.grasp_point[0]) if len(o.grasp_point) else None,
                "support": o.support or None,
                "grasped": o.grasped,
            }
            for o in msg.objects
        ],
    }
    return validate_payload(GroundTruth, data)


def sim_reset_to_msg(reset: SimReset) -> rmi.SimReset:
    return rmi.SimReset(seed=reset.seed)


def sim_reset_from_msg(msg: rmi.SimReset) -> SimReset:
    return validate_payload(SimReset, {"seed": msg.seed})


def expert_task_to_msg(task: ExpertTask) -> rmi.ExpertTask:
    return rmi.ExpertTask(object_id=task.object_id, place_id=task.place_id)


def expert_task_from_msg(msg: rmi.ExpertTask) -> ExpertTask:
    return validate_payload(ExpertTask, {"object_id": msg.object_id, "place_id": msg.place_id})


def expert_status_to_msg(status: ExpertStatus) -> rmi.ExpertStatus:
    return rmi.ExpertStatus(
        state=status.state,
        object_id=status.object_id,
        place_id=status.place_id,
        phase=status.phase,
        progress=float(status.progress),
        reason=status.reason,
    )


def expert_status_from_msg(msg: rmi.ExpertStatus) -> ExpertStatus:
    fields = ("state", "object_id", "place_id", "phase", "progress", "reason")
    return validate_payload(ExpertStatus, {f: getattr(msg, f) for f in fields})
