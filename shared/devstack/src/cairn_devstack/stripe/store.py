"""Where localstripe keeps its state: a directory we choose instead of a fixed file in /tmp.

Stock localstripe pickles its whole store to ``/tmp/localstripe.pickle`` on every single
assignment, so two instances (two test sessions, ``make run`` next to tests) overwrite
each other's data. We point ``Store`` at ``<data_dir>/store.pickle``, write it
atomically (a crash mid-write must not leave a truncated pickle the next start cannot
read), and write at most about once a second instead of once per object: pickling the
whole store is proportional to its size, so a write per request made a long run slower
and slower (a 1,000-lifecycle chaos run fell from 28 to 5 lifecycles a minute). A write
is also never allowed more than a twentieth of the time. Pending changes are flushed
when the server stops (SIGTERM/SIGINT); only a SIGKILL can lose the last second, and
nothing in Cairn kills the stand-in that way.

Webhook endpoints registered through ``POST /_config/webhooks/{id}`` live only in memory
in stock localstripe; they are kept in ``<data_dir>/webhooks.json`` so a restarted
server still delivers to the services that registered before.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import localstripe.server as ls_server
import localstripe.webhooks as ls_webhooks
from localstripe.resources import Store

__all__ = [
    "configure_store",
    "flush_store",
    "load_webhooks",
    "register_webhook",
    "unregister_webhook",
]

_paths: dict[str, Path] = {}

MIN_FLUSH_INTERVAL_S = 1.0
# A flush may take at most 1/_FLUSH_DUTY of the wall time: the next one waits this many
# times as long as the last one took.
_FLUSH_DUTY = 20.0


class _Flusher:
    """Debounces whole-store writes: mark dirty, write once the interval has passed."""

    def __init__(self) -> None:
        self.dirty = False
        self.pending: asyncio.TimerHandle | None = None
        self.next_at = 0.0

    def request(self, store: dict[Any, Any]) -> None:
        self.dirty = True
        if self.pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no server running (start-up, tests): write now
            self.flush(store)
            return
        delay = max(0.0, self.next_at - time.monotonic())
        self.pending = loop.call_later(delay, self.flush, store)

    def flush(self, store: dict[Any, Any]) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None
        if not self.dirty:
            return
        self.dirty = False
        started = time.monotonic()
        _atomic_write(
            _data_file("store.pickle"),
            pickle.dumps(dict(store), protocol=pickle.HIGHEST_PROTOCOL),
        )
        took = time.monotonic() - started
        self.next_at = started + max(MIN_FLUSH_INTERVAL_S, took * _FLUSH_DUTY)


_flusher = _Flusher()


def _data_file(name: str) -> Path:
    try:
        return _paths["dir"] / name
    except KeyError:
        raise RuntimeError("configure_store() must be called before the store is used") from None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _try_load_from_disk(self: Store) -> None:
    try:
        with _data_file("store.pickle").open("rb") as f:
            old = pickle.load(f)  # noqa: S301 - our own file, written by this process
    except FileNotFoundError:
        return
    self.clear()
    self.update(old)


def _dump_to_disk(self: Store) -> None:
    _flusher.request(self)


def flush_store(store: Store) -> None:
    """Write pending changes now (the server calls this when it stops)."""
    _flusher.flush(store)


def _set_item(self: Store, key: Any, value: Any) -> None:
    # Plain dict assignment: localstripe's save-store middleware asks for a write after
    # each POST/DELETE, which _flusher debounces.
    dict.__setitem__(self, key, value)


def _del_item(self: Store, key: Any) -> None:
    dict.__delitem__(self, key)


def configure_store(data_dir: Path) -> None:
    """Point localstripe's store (and our webhook registry) at ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    _paths["dir"] = data_dir
    Store.try_load_from_disk = _try_load_from_disk
    Store.dump_to_disk = _dump_to_disk
    Store.__setitem__ = _set_item
    Store.__delitem__ = _del_item
    # server.py imported the function by name, so patch the name it uses.
    ls_server.register_webhook = register_webhook


def _save_webhooks() -> None:
    hooks = {
        hook_id: {"url": hook.url, "secret": hook.secret, "events": hook.events}
        for hook_id, hook in ls_webhooks._webhooks.items()
    }
    _atomic_write(_data_file("webhooks.json"), json.dumps(hooks, indent=2).encode())


def register_webhook(hook_id: str, url: str, secret: str, events: list[str] | None = None) -> None:
    """Register (or replace) a webhook endpoint and persist the registry."""
    ls_webhooks.register_webhook(hook_id, url, secret, events)
    _save_webhooks()


def unregister_webhook(hook_id: str) -> bool:
    """Remove a webhook endpoint; False if it was not registered."""
    found = ls_webhooks._webhooks.pop(hook_id, None) is not None
    _save_webhooks()
    return found


def load_webhooks() -> None:
    """Re-register the endpoints saved by a previous run, if any."""
    try:
        hooks = json.loads(_data_file("webhooks.json").read_text())
    except FileNotFoundError:
        return
    for hook_id, hook in hooks.items():
        ls_webhooks.register_webhook(hook_id, hook["url"], hook["secret"], hook["events"])
