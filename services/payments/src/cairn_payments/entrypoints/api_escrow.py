"""Routes (filled in after the funding slice)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
