"""Domain errors: a refused command names the rule that refused it.

They carry no HTTP status: the entry point maps each ``code`` to one
(``entrypoints/problems.py``), so the domain says *what* was refused, never how a
transport reports it.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain turns down: ``code`` is stable (front ends switch on it),
    ``message`` is a sentence to show a user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Refused(DomainError):
    """A command the rules do not allow now (wrong role, state, setting or input)."""


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know it exists."""
