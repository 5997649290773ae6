"""Course seeds derived from the server-side secret (never sent to clients)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.orm import Session

from l2run.grader.storage.models import ServerSecret

SEED_SECRET_NAME = "seed_secret"
SEED_MASK = 0x7FFF_FFFF  # numpy RandomState and a PostgreSQL INTEGER both accept 31 bits


def derive_seed(secret: str, round_number: int, scope_key: str, trial: int) -> int:
    """HMAC-SHA256(secret, round|scope|trial) folded to 31 bits.

    scope_key is "" for round-wide seeds (every submission meets the same courses) or the
    submission id for per-submission courses.
    """
    message = f"l2run-seed|{round_number}|{scope_key}|{trial}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & SEED_MASK


def load_or_create_secret(session: Session, configured: str | None) -> str:
    """The configured secret, else the one generated on first start and kept in the database."""
    if configured:
        return configured
    row = session.get(ServerSecret, SEED_SECRET_NAME)
    if row is None:
        row = ServerSecret(name=SEED_SECRET_NAME, value=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return row.value
