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
