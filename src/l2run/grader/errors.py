"""One error type for every refusal: an HTTP status and a message that states the rule."""

from __future__ import annotations


class GraderError(Exception):
    """A refused request. `message` says what was wrong and which limit applies."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
