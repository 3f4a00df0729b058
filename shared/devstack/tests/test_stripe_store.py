"""The stand-in's store is written to disk debounced, and nothing is lost on a clean stop."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import pytest
from cairn_devstack.stripe import store as store_module


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(store_module._paths, "dir", tmp_path)
    return tmp_path


def _on_disk(data_dir: Path) -> dict[str, Any]:
    with (data_dir / "store.pickle").open("rb") as f:
        loaded: dict[str, Any] = pickle.load(f)
    return loaded


async def test_a_burst_of_changes_is_written_once_and_a_flush_writes_the_rest(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    real_write = store_module._atomic_write

    def counting_write(path: Path, data: bytes) -> None:
        writes.append(len(data))
        real_write(path, data)

    monkeypatch.setattr(store_module, "_atomic_write", counting_write)
    monkeypatch.setattr(store_module, "MIN_FLUSH_INTERVAL_S", 0.2)
    flusher = store_module._Flusher()
    store: dict[str, int] = {}

    for i in range(200):  # a burst of mutating requests
        store[f"obj_{i}"] = i
        flusher.request(store)
    await asyncio.sleep(0.05)
    assert len(writes) == 1  # the whole burst in one write
    assert _on_disk(data_dir) == store

    store["next"] = 1  # right after a write: waits for the interval
    flusher.request(store)
    await asyncio.sleep(0.05)
    assert "next" not in _on_disk(data_dir)
    await asyncio.sleep(0.3)
    assert len(writes) == 2
    assert _on_disk(data_dir)["next"] == 1

    store["late"] = 1
    flusher.request(store)
    flusher.flush(store)  # what the server does when it stops
    assert _on_disk(data_dir)["late"] == 1
    assert flusher.pending is None
