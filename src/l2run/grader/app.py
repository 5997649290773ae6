"""The grader application: `create_app(settings)` wires storage, the worker pool and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from l2run.grader.errors import GraderError
from l2run.grader.limits import BodySizeLimit
from l2run.grader.rounds import load_rounds
from l2run.grader.routes import envs, leaderboard, replays
from l2run.grader.services.pool import SimulationPool, make_pool
from l2run.grader.services.replays import ReplayService
from l2run.grader.services.seeds import load_or_create_secret
from l2run.grader.services.sessions import GraderService
from l2run.grader.settings import GraderSettings
from l2run.grader.storage.database import Database

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("static")


# FastAPI's words for a body its JSON decoder could not even start on (bytes that are not UTF-8,
# nesting deeper than the decoder's recursion limit), and ours, which say what is expected.
BODY_PARSE_ERROR = "There was an error parsing the body"
UNREADABLE_BODY = (
    "the request body is not readable JSON: send one JSON object as UTF-8 text "
    "(invalid bytes or nesting too deep)"
)


def _describe_validation(exc: RequestValidationError) -> str:
    """One readable sentence from pydantic's error list."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        if error.get("type") == "json_invalid":
            return f"malformed JSON body: {error.get('ctx', {}).get('error', error.get('msg'))}"
        message = error.get("msg", "invalid")
        if error.get("type") in ("too_short", "too_long") and location == "action":
            message = f"action must have exactly 18 numbers ({message})"
        parts.append(f"{location or 'body'}: {message}")
    return "invalid request: " + "; ".join(parts[:5])


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GraderError)
    async def grader_error(_request: Request, exc: GraderError) -> JSONResponse:
        return JSONResponse({"message": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"message": _describe_validation(exc), "errors": _jsonable_errors(exc)},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and message == BODY_PARSE_ERROR:
            message = UNREADABLE_BODY
        return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(
            {"message": f"internal grader error ({type(exc).__name__}); nothing was recorded"},
            status_code=500,
        )


def _jsonable_errors(exc: RequestValidationError) -> list[dict]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": e.get("type")}
        for e in exc.errors()
    ]


def create_app(
    settings: GraderSettings | None = None, *, pool: SimulationPool | None = None
) -> FastAPI:
    """The grader. `pool` replaces the settings' worker pool (e.g. one shared by tests)."""
    settings = settings or GraderSettings()
    rounds = load_rounds(settings.rounds_file)
    if settings.round not in rounds:
        raise ValueError(f"round {settings.round} is not defined; rounds: {sorted(rounds)}")
    rules = rounds[settings.round]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        await asyncio.to_thread(db.migrate)

        def secret() -> str:
            with db.session() as session:
                return load_or_create_secret(session, settings.secret)

        simulation = pool or make_pool(settings)
        owns_pool = pool is None
        if owns_pool:
            await simulation.start()
        app.state.db = db
        seed_secret = await asyncio.to_thread(secret)
        app.state.grader = GraderService(settings, db, simulation, rules, seed_secret)
        app.state.replays = ReplayService(db, simulation, settings.engine, settings.replay_dir)
        expiry = asyncio.create_task(_expire_forever(app.state.grader, settings))
        try:
            yield
        finally:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry
            if owns_pool:
                await simulation.stop()
            db.dispose()

    app = FastAPI(
        title="l2run grader",
        version="1",
        description="Remote evaluation for Learning to Run (gym-http-api protocol), leaderboard.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rounds = rounds
    _install_error_handlers(app)
    app.include_router(envs.router)
    app.include_router(leaderboard.router)
    app.include_router(replays.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


async def _expire_forever(service: GraderService, settings: GraderSettings) -> None:
    while True:
        await asyncio.sleep(settings.expiry_check_interval_s)
        try:
            expired = await service.expire_idle()
            if expired:
                log.info("abandoned %d idle instances", len(expired))
        except Exception:  # keep expiring even if one sweep fails (e.g. database restart)
            log.exception("idle expiry sweep failed")
