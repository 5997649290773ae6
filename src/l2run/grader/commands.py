"""`l2run grader ...`: run a challenge server and administer participants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Self-hosted remote evaluation (the 2017 grader) with a leaderboard.")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL (default: $L2RUN_GRADER_DATABASE_URL or SQLite)"),
]


def _settings(**overrides):
    from l2run.grader.settings import GraderSettings

    return GraderSettings(**{k: v for k, v in overrides.items() if v is not None})


def _check_round(settings) -> None:
    """A usage error (not a traceback) for a round the rounds file does not define."""
    from l2run.grader.rounds import load_rounds

    try:
        rounds = load_rounds(settings.rounds_file)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--rounds-file") from None
    if settings.round not in rounds:
        raise typer.BadParameter(
            f"round {settings.round} is not defined; rounds: {sorted(rounds)}",
            param_hint="--round",
        )


def _database(db: str | None):
    from l2run.grader.storage.database import Database

    database = Database(_settings(database_url=db).database_url)
    database.migrate()
    return database


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    db: DbOption = None,
    round: Annotated[int | None, typer.Option("--round", help="the open round")] = None,
    rounds_file: Annotated[
        Path | None, typer.Option(help="rounds TOML (default: the packaged rounds.toml)")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="simulation processes")] = None,
    engine: Annotated[str | None, typer.Option(help="simulation engine: opensim or jax")] = None,
    pool: Annotated[str | None, typer.Option(help="worker pool backend: process or ray")] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="seconds before an idle instance is abandoned")
    ] = None,
) -> None:
    """Serve the gym-http-api routes under /v1/envs/ and the leaderboard at /."""
    import uvicorn

    from l2run.grader.app import create_app

    settings = _settings(
        database_url=db,
        round=round,
        rounds_file=rounds_file,
        workers=workers,
        engine=engine,
        pool_backend=pool,
        idle_timeout_s=idle_timeout,
    )
    _check_round(settings)
    typer.echo(
        f"l2run grader: round {settings.round}, {settings.workers} {settings.pool_backend} "
        f"workers, engine {settings.engine}, database {settings.database_url}"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("add-user")
def add_user(name: Annotated[str, typer.Argument(help="participant name")], db: DbOption = None):
    """Create a participant and print their token (shown only now; stored hashed)."""
    from l2run.grader.services.participants import add_participant

    database = _database(db)
    try:
        with database.session() as session:
            token = add_participant(session, name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(token)


@app.command("list-users")
def list_users(db: DbOption = None) -> None:
    """Participants, their submission counts and whether they are revoked."""
    from l2run.grader.services.participants import list_participants

    with _database(db).session() as session:
        rows = list_participants(session)
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        typer.echo(
            f"{row.name}\t{state}\t{row.submissions} submissions\t"
            f"since {row.created_at:%Y-%m-%d %H:%M}"
        )


@app.command()
def revoke(name: Annotated[str, typer.Argument(help="participant name")], db: DbOption = None):
    """Revoke a participant's token: their instances stop answering, they leave the board."""
    from l2run.grader.services.participants import revoke_participant

    try:
        with _database(db).session() as session:
            revoke_participant(session, name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"revoked {name}")


@app.command()
def leaderboard(
    db: DbOption = None,
    round: Annotated[int | None, typer.Option("--round", help="round (default: open)")] = None,
) -> None:
    """Print the leaderboard of a round."""
    from l2run.grader.services.leaderboard import leaderboard as board

    settings = _settings(round=round)
    _check_round(settings)
    number = settings.round
    with _database(db).session() as session:
        entries = board(session, number)
    typer.echo(f"Round {number}")
    typer.echo("rank\tparticipant\tscore\tsubmissions\tsubmitted (UTC)\tdistances (m)")
    for e in entries:
        distances = ", ".join(f"{ep.distance:.2f}" for ep in e.episodes)
        typer.echo(
            f"{e.rank}\t{e.participant}\t{e.score:.4f}\t{e.submissions}\t"
            f"{e.submitted_at:%Y-%m-%d %H:%M}\t{distances}"
        )
