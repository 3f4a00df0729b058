"""Handles on the stand-ins when they run as child processes (what the pytest fixtures
return); usable outside pytest too, e.g. by the end-to-end and chaos harnesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import uvicorn

from cairn_devstack.httpjson import HttpError, request_json
from cairn_devstack.procs import (
    ProcessStartError,
    free_port,
    python_module_args,
    spawn,
    terminate,
    wait_for,
)

if TYPE_CHECKING:
    import stripe

__all__ = [
    "MailSinkProcess",
    "StripeServer",
    "assert_no_server_error",
    "serve_in_thread",
    "start_mail_sink",
    "start_stripe_server",
]


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _wait_http(url: str, proc: Popen[bytes], log_path: Path, what: str, timeout: float) -> None:
    def answers() -> bool:
        try:
            request_json("GET", url, timeout=1.0)
        except (OSError, HttpError):
            return False
        return True

    try:
        wait_for(answers, timeout=timeout, what=what, proc=proc)
    except ProcessStartError as exc:
        terminate(proc)
        raise ProcessStartError(f"{exc}\n--- {log_path} ---\n{_log_tail(log_path)}") from None


class StripeServer:
    """A running localstripe (with Cairn's extension) and its dev-only controls."""

    api_key = "sk_test_cairn_devstack"

    def __init__(self, port: int, data_dir: Path, proc: Popen[bytes]) -> None:
        self.port = port
        self.api_base = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        self.proc = proc

    def _config(self, method: str, path: str, body: Any = None) -> Any:
        return request_json(method, f"{self.api_base}/_config/{path}", body)

    def stats(self) -> dict[str, Any]:
        """Counts of stored objects by type ("charges", "transfers", "refunds", "reversals",
        ...), plus ``idempotency_keys`` and ``faults`` (injected so far)."""
        result: dict[str, Any] = self._config("GET", "stats")
        return result

    def set_faults(self, **plan: Any) -> dict[str, Any]:
        """Break requests: ``error_rate``, ``timeout_rate``, ``timeout_seconds``, ``seed``,
        ``paths`` (prefixes), ``timeout_mode`` ("mixed" | "after" | "before")."""
        result: dict[str, Any] = self._config("POST", "faults", plan)
        return result

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self._config("DELETE", "faults")

    def register_webhook(
        self, url: str, secret: str, *, events: list[str] | None = None, hook_id: str = "cairn"
    ) -> None:
        """Deliver events (all, or only ``events``) to ``url``, signed with ``secret``."""
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        request_json("POST", f"{self.api_base}/_config/webhooks/{quote(hook_id)}", body)

    def unregister_webhook(self, hook_id: str = "cairn") -> None:
        """Stop delivering to the endpoint registered as ``hook_id``."""
        self._config("DELETE", f"webhooks/{quote(hook_id)}")

    def enable_payouts(self, account_id: str, *, webhook: bool = True) -> dict[str, Any]:
        """Finish the connected account's onboarding (sends ``account.updated``, unless
        ``webhook`` is False: the webhook is lost)."""
        query = "" if webhook else "?webhook=false"
        result: dict[str, Any] = self._config(
            "POST", f"accounts/{quote(account_id)}/enable_payouts{query}"
        )
        return result

    def disable_payouts(self, account_id: str) -> dict[str, Any]:
        """Make the connected account restricted again (sends ``account.updated``)."""
        result: dict[str, Any] = self._config(
            "POST", f"accounts/{quote(account_id)}/disable_payouts"
        )
        return result

    def authenticate_payment(
        self, payment_intent_id: str, client_secret: str, *, success: bool = True
    ) -> dict[str, Any]:
        """Play the customer completing (or failing) 3-D Secure on a ``requires_action``
        PaymentIntent, as Stripe.js would (localstripe's ``_authenticate`` endpoint)."""
        result: dict[str, Any] = request_json(
            "POST",
            f"{self.api_base}/v1/payment_intents/{quote(payment_intent_id)}/_authenticate",
            form={
                "key": "pk_test_cairn_devstack",
                "client_secret": client_secret,
                "success": "true" if success else "false",
            },
        )
        return result

    def flush(self) -> None:
        """Delete every Stripe object and idempotency key (webhooks and faults stay)."""
        self._config("DELETE", "data")

    def client(self, **options: Any) -> stripe.StripeClient:
        """A ``stripe.StripeClient`` pointed at this server (needs the ``stripe`` package)."""
        import stripe

        options.setdefault("max_network_retries", 0)
        return stripe.StripeClient(self.api_key, base_addresses={"api": self.api_base}, **options)

    def stop(self) -> None:
        """Stop the server process."""
        terminate(self.proc)


def start_stripe_server(
    data_dir: Path, *, port: int | None = None, timeout: float = 20.0
) -> StripeServer:
    """Start ``python -m cairn_devstack.stripe`` on ``port`` (a free one by default) with a
    fresh store in ``data_dir``; returns once it answers."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    proc = spawn(
        python_module_args(
            "cairn_devstack.stripe",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--from-scratch",
        ),
        log_path=log_path,
    )
    server = StripeServer(port, data_dir, proc)
    _wait_http(f"{server.api_base}/_config/stats", proc, log_path, "localstripe", timeout)
    return server


class MailSinkProcess:
    """A running mail sink (SMTP + web page), with its controls and an outage switch."""

    smtp_host = "127.0.0.1"

    def __init__(self, smtp_port: int, http_port: int, data_dir: Path) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.http_url = f"http://127.0.0.1:{http_port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        self.proc: Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """(Re)start the sink on the same ports; history in ``data_dir`` is kept."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = spawn(
            python_module_args(
                "cairn_devstack.mailsink",
                "--smtp-port",
                str(self.smtp_port),
                "--http-port",
                str(self.http_port),
                "--data-dir",
                str(self.data_dir),
            ),
            log_path=self.log_path,
        )
        _wait_http(f"{self.http_url}/api/health", self.proc, self.log_path, "mail sink", timeout)

    def stop(self) -> None:
        """Take the sink down (connections are refused until :meth:`start`)."""
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None

    @property
    def running(self) -> bool:
        """True while the sink process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Every caught message, oldest first (only those to ``to`` if given). Keys: id,
        received_at, from, to (envelope), subject, message_id, headers, text, html, links,
        raw."""
        query = f"?to={quote(to)}" if to else ""
        result: list[dict[str, Any]] = request_json("GET", f"{self.http_url}/api/messages{query}")
        return result

    def wait_for_messages(
        self, count: int, *, to: str | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages (to ``to``) arrived; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(to)
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    async def await_messages(
        self,
        count: int,
        *,
        to: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - same signature as wait_for_messages
    ) -> list[dict[str, Any]]:
        """Like :meth:`wait_for_messages` without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            found = await asyncio.to_thread(self.messages, to)
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(0.05)

    def clear(self) -> None:
        """Forget every caught message."""
        request_json("DELETE", f"{self.http_url}/api/messages")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """``tempfail_next=N`` (451; ``tempfail_at="rcpt"`` for RCPT), ``reject_recipients=[...]``
        (550), ``drop_next=N`` (connection cut after DATA). Merges with current settings."""
        result: dict[str, Any] = request_json("POST", f"{self.http_url}/api/faults", faults)
        return result

    def clear_faults(self) -> None:
        """No faults any more."""
        request_json("DELETE", f"{self.http_url}/api/faults")


def start_mail_sink(
    data_dir: Path, *, smtp_port: int | None = None, http_port: int | None = None
) -> MailSinkProcess:
    """Start the sink on free ports (unless given) keeping mail in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    sink = MailSinkProcess(smtp_port or free_port(), http_port or free_port(), data_dir)
    sink.start()
    return sink


@contextlib.contextmanager
def serve_in_thread(app: Any, *, timeout: float = 15.0) -> Iterator[str]:
    """Serve an ASGI ``app`` on a free port, in a thread with its own event loop; yields
    its base URL. For synchronous HTTP clients in tests (schemathesis), which would block
    an app served on the test's own loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start serving")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def assert_no_server_error(
    case: Any, base_url: str, callers: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """Call a schemathesis ``case`` as each caller (name -> headers); a 5xx fails with the
    caller, the answer and a curl line to replay it. ``/readyz`` may answer its documented
    503 (a dependency down). Returns each caller's response."""
    responses = {}
    for who, headers in callers.items():
        response = case.call(base_url=base_url, headers=headers)
        responses[who] = response
        if case.path == "/readyz" and response.status_code == 503:
            continue
        assert response.status_code < 500, (
            who,
            response.status_code,
            response.text[:500],
            case.as_curl_command(headers=headers),
        )
    return responses


#: Characters every API refuses in text (issue 16): C0 but tab/LF/CR, DEL, C1, bidi.
CONTROL_CHARACTERS = (
    [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)
WRONG_CONTENT_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=cairn",
    "application/vnd.api+json",
    "application/xml",
)


def operations_with_a_body(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation that takes a JSON body, path ids filled in."""
    found = []
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                filled = "/".join("x1" if p.startswith("{") else p for p in path.split("/"))
                found.append((method.upper(), filled))
    return sorted(found)


def assert_refuses_bad_input(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    kind: str,
    text: str = "",
    content_type: str = "",
    size: int = 0,
) -> None:
    """Send one deliberately bad request and check the API refuses it with the right
    problem+json (never a 5xx, never an acceptance): ``kind`` is ``control`` (a JSON body
    whose string holds ``text``), ``media_type`` (a body of ``content_type``) or
    ``oversized`` (a JSON body of ``size`` bytes)."""
    import httpx

    if kind == "control":
        body = json.dumps({"title": text, "body": text}).encode()
        ctype, expected = "application/json", (422, "request.invalid")
    elif kind == "media_type":
        body, ctype = b"title=a", content_type
        expected = (415, "request.unsupported_media_type")
    else:
        body = json.dumps({"title": "x" * size}).encode()
        ctype, expected = "application/json", (413, "request.too_large")
    response = httpx.request(
        method,
        base_url + path,
        content=body,
        headers=headers | {"content-type": ctype},
        timeout=30,
    )
    got = (response.status_code, response.json().get("code"))
    assert got == expected, (kind, method, path, got, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    if kind == "control":
        assert response.json()["errors"][0]["type"] == "string_control_character"
