"""Cairn notifications service."""
