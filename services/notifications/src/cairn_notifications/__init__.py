"""Cairn notifications service: the right email to the right party at every step."""

__version__ = "0.1.0"
