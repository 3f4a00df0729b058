"""``cairn-devstack`` subcommands as ``make run`` uses them: foreground, clean exit 0 on
SIGTERM/SIGINT, children stopped."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from cairn_devstack.procs import free_port, port_is_open, spawn, wait_for_port
from cairn_devstack.testing import StripeServer

CLI = str(Path(sys.executable).parent / "cairn-devstack")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=10)


def test_broker_runs_until_sigterm_and_takes_tansu_down(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn([CLI, "broker", "--port", str(port)], log_path=tmp_path / "cli.log")
    try:
        wait_for_port(port, timeout=20, proc=proc)
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only
        topics = subprocess.run(
            [
                CLI,
                "topics",
                "--bootstrap",
                f"127.0.0.1:{port}",
                "cli.events:3",
                "cli.settings:1:compact",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert topics.returncode == 0, topics.stderr
        assert "cli.settings: 1 partition(s) (compacted)" in topics.stdout
        assert {"cli.events", "cli.settings"} <= set(asyncio.run(_list_topics(port)))
    finally:
        code = _stop(proc)
    assert code == 0
    assert not port_is_open(port)  # the tansu child went with it


async def _list_topics(port: int) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    await admin.start()
    try:
        topics: list[str] = await admin.list_topics()
        return topics
    finally:
        await admin.close()


def test_stripe_binds_loopback_keeps_store_in_data_dir_and_exits_cleanly(
    tmp_path: Path,
) -> None:
    port = free_port()
    data = tmp_path / "stripe"
    proc = spawn(
        [CLI, "stripe", "--port", str(port), "--data-dir", str(data), "--quiet"],
        log_path=tmp_path / "cli.log",
    )
    try:
        wait_for_port(port, timeout=20, proc=proc)
        assert _listening_addresses(port) == {"0100007F"}
        client = StripeServer(port, data, proc).client()
        customer = client.v1.customers.create({"email": "kept@example.com"})
    finally:
        code = _stop(proc, signal.SIGINT)
    assert code == 0
    assert (data / "store.pickle").is_file()

    again = spawn(
        [CLI, "stripe", "--port", str(port), "--data-dir", str(data), "--quiet"],
        log_path=tmp_path / "cli.log",
    )
    try:
        wait_for_port(port, timeout=20, proc=again)
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
    finally:
        assert _stop(again) == 0


def test_mailsink_runs_until_sigterm(tmp_path: Path) -> None:
    smtp, http = free_port(), free_port()
    proc = spawn(
        [
            CLI,
            "mailsink",
            "--smtp-port",
            str(smtp),
            "--http-port",
            str(http),
            "--data-dir",
            str(tmp_path / "mail"),
        ],
        log_path=tmp_path / "cli.log",
    )
    try:
        wait_for_port(smtp, proc=proc)
        wait_for_port(http, proc=proc)
        assert _listening_addresses(smtp) == {"0100007F"}
    finally:
        code = _stop(proc)
    assert code == 0
    assert not port_is_open(smtp)
    assert not port_is_open(http)


@pytest.mark.parametrize("spec", ["", "x:0", "x:two", "x:1:delete"])
def test_topics_refuses_bad_specs(spec: str) -> None:
    result = subprocess.run(
        [CLI, "topics", spec], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "bad" in result.stderr or "must" in result.stderr
