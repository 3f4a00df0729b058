"""``make run``: the whole of Cairn on one machine with embedded defaults.

Starts the broker (tansu, memory storage), creates the topics, starts localstripe with the
Connect extension and the mail sink, migrates three SQLite databases under ``.data/``,
starts each service's API and worker, registers the Stripe webhook, seeds a demo
marketplace and prints where to look. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from cairn_schemas import topics

from cairn_devstack.broker import create_topics, start_broker
from cairn_devstack.procs import port_is_open, run_sync, terminate
from cairn_devstack.stack import SERVICES, CairnStack, Infra
from cairn_devstack.testing import start_mail_sink, start_stripe_server

JWT_SECRET = "cairn-local-development-secret-change-me"
WEBHOOK_SECRET = "whsec_cairn_local"
DEMO_MARKETPLACE = "demo"
PORTS = {
    "broker": 9092,
    "stripe": 8420,
    "smtp": 1025,
    "mail": 8025,
    "contracts": 8001,
    "payments": 8002,
    "notifications": 8003,
}
DEMO_USERS = {
    "operator": ("operator-1", "ops@demo.test", "Olive Operator"),
    "customer": ("customer-1", "customer@demo.test", "Cleo Customer"),
    "freelancer": ("freelancer-1", "freelancer@demo.test", "Finn Freelancer"),
}
DEMO_SETTINGS: dict[str, Any] = {
    "milestone_creator": "freelancer",
    "currency": "EUR",
    "platform_fee_bps": 1000,
    "auto_release_after_days": 14,
    "refund_response_days": 7,
    "branding": {
        "display_name": "Demo Talent",
        "from_address": "hello@demo-talent.test",
        "support_address": "help@demo-talent.test",
        "accent_colour": "#0a7cff",
    },
}


def _token(role: str) -> str:
    import jwt  # the stack's own dependency, via the services

    sub, email, name = DEMO_USERS[role]
    now = int(time.time())
    return jwt.encode(
        {
            "sub": sub,
            "role": role,
            "marketplace": DEMO_MARKETPLACE,
            "email": email,
            "name": name,
            "iat": now,
            "exp": now + 30 * 86400,
        },
        JWT_SECRET,
        algorithm="HS256",
    )


def _put_json(url: str, body: Any, token: str) -> Any:
    req = urllib.request.Request(  # noqa: S310 - local URL we built
        url,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return json.loads(r.read())


def main(argv: list[str] | None = None) -> int:
    """Run the stack in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="cairn-devstack up")
    parser.add_argument("--data-dir", default=".data")
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases and mail of the previous run"
    )
    parser.add_argument(
        "--traces",
        action="store_true",
        help="trace every process into <data-dir>/traces/*.jsonl (OpenTelemetry, one span "
        "per line); OTEL_TRACES_EXPORTER in the environment (otlp, console) works too",
    )
    args = parser.parse_args(argv)
    data = Path(args.data_dir).resolve()
    busy = [f"{name} ({port})" for name, port in PORTS.items() if port_is_open(port)]
    if busy:
        print(
            f"These ports are already taken: {', '.join(busy)}. Is another `make run` still up?",
            file=sys.stderr,
        )
        return 1
    if data.exists() and not args.keep:
        # The broker keeps nothing across runs; starting the databases afresh too keeps
        # the two consistent (no outbox row marked sent whose event the broker lost).
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    logs = data / "logs"
    procs: list[Any] = []
    stack: CairnStack | None = None
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print("starting the broker (tansu, memory storage)…", flush=True)
        procs.append(start_broker(PORTS["broker"], log_path=logs / "broker.log"))
        bootstrap = f"127.0.0.1:{PORTS['broker']}"
        run_sync(
            create_topics(bootstrap, {t: 3 for t in topics.ALL}, compacted=set(topics.COMPACTED))
        )
        print("starting localstripe (with the Connect extension) and the mail sink…", flush=True)
        stripe = start_stripe_server(data / "stripe", port=PORTS["stripe"])
        procs.append(stripe.proc)
        mail = start_mail_sink(data / "mail", smtp_port=PORTS["smtp"], http_port=PORTS["mail"])
        procs.append(mail.proc)
        stack = CairnStack(
            Infra(
                kafka_bootstrap=bootstrap,
                stripe_api_base=stripe.api_base,
                stripe_api_key=stripe.api_key,
                stripe_webhook_secret=WEBHOOK_SECRET,
                smtp_host="127.0.0.1",
                smtp_port=PORTS["smtp"],
                jwt_secret=JWT_SECRET,
                database_urls={s: f"sqlite+aiosqlite:///{data}/{s}.db" for s in SERVICES},
            ),
            log_dir=logs,
            api_ports={s: PORTS[s] for s in SERVICES},
            extra_env=_tracing_env(data) if args.traces else {},
        )
        print("migrating and starting the services…", flush=True)
        stack.migrate()
        stack.start_all()
        stripe.register_webhook(stack.url("payments") + "/v1/stripe/webhook", WEBHOOK_SECRET)
        _put_json(
            f"{stack.url('contracts')}/v1/marketplaces/{DEMO_MARKETPLACE}/settings",
            DEMO_SETTINGS,
            _token("operator"),
        )
        tokens = {role: _token(role) for role in DEMO_USERS}
        (data / "stack.json").write_text(
            json.dumps(
                {
                    "urls": {s: stack.url(s) for s in SERVICES}
                    | {"mail": mail.http_url, "stripe": stripe.api_base},
                    "marketplace": DEMO_MARKETPLACE,
                    "tokens": tokens,
                    "users": DEMO_USERS,
                },
                indent=2,
            )
        )
        _banner(stack, mail.http_url, stripe.api_base, tokens, logs)
        while not stopping:
            dead = stack.dead()
            if dead:
                print(f"a process died: {dead}; see {logs}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("\nstopping…", flush=True)
        if stack is not None:
            stack.stop_all()
        for proc in reversed(procs):
            if proc is not None:
                terminate(proc)
        print("stopped.", flush=True)


def _tracing_env(data: Path) -> dict[str, str]:
    """Every process writes its spans to a file of its own under ``data/traces``."""
    return {
        "OTEL_TRACES_EXPORTER": "file",
        "CAIRN_OTEL_TRACES_DIR": str(data / "traces"),
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }


def _banner(
    stack: CairnStack, mail_url: str, stripe_url: str, tokens: dict[str, str], logs: Path
) -> None:
    lines = [
        "",
        "Cairn is up. Press Ctrl-C to stop everything.",
        "",
        "API docs:",
        *(f"  {s:<14} {stack.url(s)}/docs" for s in SERVICES),
        f"Mail caught:     {mail_url}",
        f"Stripe stand-in: {stripe_url}   (localstripe + Connect extension)",
        f"Logs:            {logs}",
        "",
        f"Demo marketplace '{DEMO_MARKETPLACE}' (freelancer mode, EUR, 10% fee). Tokens:",
        *(f"  export {role.upper()}_TOKEN={tok}" for role, tok in tokens.items()),
        "",
        "Walk the slice through the APIs:  make demo",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
