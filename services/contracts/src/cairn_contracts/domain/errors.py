"""Domain errors: a refused command names the rule that refused it."""

from __future__ import annotations


class Refused(Exception):
    """A command the workflow rules do not allow (HTTP 409 unless ``status`` says otherwise).

    ``code`` is stable (front ends switch on it); ``message`` is a sentence to show a user.
    """

    def __init__(self, code: str, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class NotFound(Exception):
    """The thing does not exist, or the caller may not know it exists (HTTP 404)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
