"""The robot-memory command line: argument handling that needs no ROS graph."""

import pytest

from robot_memory.cli import main


def test_record_forwards_every_option_to_the_recorder(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["record", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "robot-memory record" in out and "--storage" in out and "--use-sim-time" in out


def test_record_without_output_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["record", "/joint_states"])
    assert exit_info.value.code == 2
    assert "-o/--output" in capsys.readouterr().err


def test_launch_rejects_a_misspelt_parameter(capsys):
    assert main(["launch", "sim", "sim.sede:=3"]) == 2
    assert "no parameter" in capsys.readouterr().err


def test_forwarded_commands_show_their_own_help(capsys):
    for command in ("replay", "eval", "scenarios"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_query_and_topics_are_forwarded_with_their_own_help(capsys):
    for command, words in (("query", ("relation_history", "--json")), ("topics", ("--all",))):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert f"robot-memory {command}" in out and all(w in out for w in words)


def test_a_bad_query_is_a_usage_error_before_any_ros(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["query", "teleport"])
    assert exit_.value.code == 2
    assert main(["query", "find", "--text", "cube", "--top-k", "1000"]) == 2
    assert "top_k" in capsys.readouterr().err


def test_query_tables_show_each_kind():
    from robot_memory.apps.query_cli import render
    from robot_memory.schemas import MemoryAnswer

    summary = {"id": 3, "label": "red cube", "color": "red", "shape": "cube",
               "status": "visible", "confidence": 0.9, "centroid": [0.1, 0.2, 0.03],
               "bbox_min": [0, 0, 0], "bbox_max": [1, 1, 1], "first_seen": 1.0,
               "last_seen": 2.0, "last_camera": "front", "yaw": None,
               "relations": [{"relation": "in", "target": "bin"}]}  # fmt: skip
    text = render(MemoryAnswer(id="a", kind="find", ok=True, results=[{**summary, "score": 0.8}]))
    assert "red cube" in text and "0.800" in text and "in bin" in text
    changes = [{"change": "moved", "stamp": 5.0, "from": [0, 0, 0], "to": [1, 0, 0], "id": 3,
                "label": "red cube"}]  # fmt: skip
    assert "moved" in render(MemoryAnswer(id="a", kind="changed_since", ok=True, results=changes))
    assert "nothing" in render(MemoryAnswer(id="a", kind="in", ok=True, results=[]))


def test_topics_sorts_actions_out_of_hidden_services():
    from robot_memory.apps.topic_list import classify, render

    graph = classify(
        ["/memory", "/planner"],
        [("/memory/scene_graph", ["robot_memory_interfaces/msg/SceneGraph"]), ("/rosout", ["x"]),
         ("/planner/execute/_action/status", ["action_msgs/msg/GoalStatusArray"])],
        [("/memory/query", ["robot_memory_interfaces/srv/QueryMemory"]),
         ("/memory/get_parameters", ["rcl_interfaces/srv/GetParameters"]),
         ("/planner/execute/_action/send_goal",
          ["robot_memory_interfaces/action/ExecuteInstruction_SendGoal"])],
        {"/memory/scene_graph": (1, 2)},
    )  # fmt: skip
    assert graph.actions == {
        "/planner/execute": "robot_memory_interfaces/action/ExecuteInstruction"
    }
    assert list(graph.services) == ["/memory/query"] and list(graph.topics) == [
        "/memory/scene_graph"
    ]
    assert "[1 pub, 2 sub]" in render(graph)
