"""`l2run grader` admin commands: add-user prints a token, list-users, revoke, leaderboard."""

from __future__ import annotations

from typer.testing import CliRunner

from l2run.cli import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, ["grader", *args])
    return result


def test_admin_commands(tmp_path):
    db = f"sqlite:///{tmp_path / 'admin.db'}"
    added = invoke("add-user", "zoe", "--db", db)
    assert added.exit_code == 0, added.output
    token = added.output.strip()
    assert len(token) >= 40
    duplicate = invoke("add-user", "zoe", "--db", db)
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    listed = invoke("list-users", "--db", db)
    assert "zoe" in listed.output and "active" in listed.output and token not in listed.output
    assert invoke("revoke", "zoe", "--db", db).exit_code == 0
    assert "revoked" in invoke("list-users", "--db", db).output
    missing = invoke("revoke", "nobody", "--db", db)
    assert missing.exit_code != 0 and "no participant" in missing.output
    board = invoke("leaderboard", "--db", db)
    assert board.exit_code == 0 and "Round 1" in board.output


def test_every_grader_command_has_help():
    for command in ("serve", "add-user", "list-users", "revoke", "leaderboard"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_an_undefined_round_is_a_usage_error(tmp_path):
    db = f"sqlite:///{tmp_path / 'admin.db'}"
    for command in (["leaderboard", "--round", "7"], ["serve", "--round", "9", "--port", "1"]):
        result = invoke(*command, "--db", db)
        assert result.exit_code == 2, result.output  # click's usage error, no traceback
        assert "is not defined; rounds: [1, 2]" in result.output
        assert "Traceback" not in result.output
