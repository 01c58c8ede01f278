"""The task suite and its in-process evaluation (``robot-memory eval-tasks``)."""
