"""`l2run model compile`: the output it names is the file it writes."""

from __future__ import annotations

from typer.testing import CliRunner

from l2run.cli import app


def test_compile_refuses_an_output_numpy_would_rename(tmp_path) -> None:
    out = tmp_path / "params.txt"
    result = CliRunner().invoke(app, ["model", "compile", "-o", str(out)])
    assert result.exit_code == 2 and "must end in .npz" in result.output, result.output
    assert not out.exists() and not out.with_name("params.txt.npz").exists()
