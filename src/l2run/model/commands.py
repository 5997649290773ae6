"""`l2run model ...`: commands on the model definition (export to .osim; the JAX area adds
`compile` to this same group by decorating another function with `@app.command()`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="The 2017 runner model: export our JSON definition to OpenSim, compile it.",
    no_args_is_help=True,
)

DefinitionOption = Annotated[
    Path | None,
    typer.Option(
        "--definition",
        "-d",
        help="Model definition JSON (default: the packaged gait9dof18musc.json).",
        exists=True,
        dir_okay=False,
    ),
]


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Where to write the .osim file.", dir_okay=False)],
    definition: DefinitionOption = None,
) -> None:
    """Build the model from the definition through the OpenSim API and write it as .osim."""
    import opensim as osim

    from l2run.model.build_opensim import build_model
    from l2run.model.definition import load_definition

    osim.Logger.setLevelString("error")
    try:
        model = build_model(load_definition(definition))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--definition") from exc
    model.finalizeConnections()  # sockets -> paths, so the file reloads
    out.parent.mkdir(parents=True, exist_ok=True)
    if not model.printToXML(str(out)):
        typer.echo(f"error: could not write {out}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"wrote {out} ({model.getNumBodies()} bodies, {model.getNumCoordinates()} coordinates, "
        f"{model.getMuscles().getSize()} muscles)"
    )


@app.command("compile")
def compile_params(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Where to write the .npz (default: the packaged parameter file)."
        ),
    ] = None,
) -> None:
    """Compile the packaged definition into the JAX engine's parameter file (.npz)."""
    from l2run.engines.jax.compile import compile_to_file
    from l2run.engines.jax.params import PARAMS_FILE

    if out is not None and out.suffix != ".npz":
        # numpy would append ".npz" itself and the message would name a file that is not there
        raise typer.BadParameter(f"the parameter file must end in .npz, got {out.name!r}")
    path = compile_to_file(out or PARAMS_FILE)
    typer.echo(f"wrote {path}")
