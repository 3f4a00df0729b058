"""Cairn contracts service."""
