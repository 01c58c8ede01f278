"""Health counters every core and node keeps (rates, latencies, rejected inputs
by reason); the nodes publish them on ``/diagnostics``. ROS-free."""
