"""The QoS profiles of the topic contract (docs/topics.md)."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

#: Cameras: best effort, keep last 5.
SENSOR = qos_profile_sensor_data
#: Commands, chunks, joint states: reliable, keep last 10.
COMMAND = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=10
)
#: Scene graph, e-stop and other latched state: reliable, transient local, depth 1.
LATCHED = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
#: /tf as tf2's TransformBroadcaster and TransformListener use it: reliable,
#: volatile, keep last 100.
TF = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
#: /tf_static as tf2's StaticTransformBroadcaster: reliable, transient local,
#: depth 1 (a publisher sends all its static transforms in one message).
TF_STATIC = LATCHED
#: Statuses and plans (/policy/status, /planner/status, /planner/plan): latched
#: like LATCHED but 10 deep: statuses are events that can come back to back (a
#: refusal, a pre-emption) and depth 1 would drop the first before a live
#: subscriber took it. A late subscriber with depth 1 gets the last.
STATUS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
