"""Command-line apps that drive a running stack or the simulator: the demo and
its report, ``say`` (an instruction), ``query`` (memory), ``topics`` (the ROS
graph), and the scenario bag recorder. Not part of a deployed robot."""
