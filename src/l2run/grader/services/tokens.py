"""Participant tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32  # 256 bits: a plain (unsalted) digest is safe against guessing
INSTANCE_ID_BYTES = 24


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_instance_id() -> str:
    """Unguessable instance id (192 bits): knowing one id tells nothing about another."""
    return secrets.token_urlsafe(INSTANCE_ID_BYTES)
