"""`python -m l2run` = the `l2run` command (for environments without the console script)."""

from l2run.cli import app

app()
