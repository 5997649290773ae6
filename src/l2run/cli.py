"""`l2run` command line: one command group per package folder.

Each folder owns its commands in a `commands.py` module (heavy imports happen inside the
commands, so `l2run --help` stays fast); this module only assembles them.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from l2run.engines.cpu_threads import DEFAULT_CPU_THREADS, THREADS_ENV, choose_cpu_threads

app = typer.Typer(
    help="Learning to Run: simulate, grade, render and train the 2017 NIPS runner.",
    no_args_is_help=True,
    add_completion=False,
)

# (module, attribute, name-or-None). A Typer sub-app becomes a group `l2run <name> ...`;
# a plain function becomes a top-level command.
_COMMANDS: list[tuple[str, str, str | None]] = [
    # filled in by each area: ("l2run.env.commands", "run", None), ...
    ("l2run.model.commands", "app", "model"),
    ("l2run.env.commands", "run", None),
    ("l2run.grader.commands", "app", "grader"),
    ("l2run.train.commands", "train", None),
    ("l2run.train.commands", "test", None),
    ("l2run.train.commands", "evaluate", None),
    ("l2run.train.commands", "demo", None),
    ("l2run.render.commands", "render", None),
    ("l2run.render.commands", "plot", None),
]


@app.callback()
def _process_options(
    cpu_threads: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=f"CPU threads per process for the JAX engine (0: one per core). Default: "
            f"${THREADS_ENV} if set, else {DEFAULT_CPU_THREADS}, which runs this engine's small "
            f"kernels fastest; use --workers to use more cores.",
        ),
    ] = None,
) -> None:
    try:
        # the default applies only where it still can (an in-process caller may have started JAX)
        choose_cpu_threads(cpu_threads)
    except RuntimeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cpu-threads") from exc


def _register() -> None:
    for module_name, attr, name in _COMMANDS:
        obj = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name=name)(obj)


_register()

if __name__ == "__main__":
    app()
