"""Cairn payments service."""
