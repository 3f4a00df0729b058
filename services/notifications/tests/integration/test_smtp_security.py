"""STARTTLS and SMTP AUTH are configurable: against a real aiosmtpd server that insists on
both, the sender delivers with the right settings, and a wrong password or a missing
STARTTLS leaves the email to be retried (our configuration is at fault, not the email)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cairn_devstack.procs import free_port
from cairn_notifications.adapters.smtp import DeliveryError, OutgoingEmail, SmtpSender
from cairn_notifications.config import Settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.integration

USER, PASSWORD = "cairn", "s3cret-relay-password"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Catcher:
    def __init__(self) -> None:
        self.caught: list[tuple[str, list[str], bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        tls = session.ssl is not None
        self.caught.append((envelope.mail_from, list(envelope.rcpt_tos), tls))
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == USER
        and data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An SMTP server that requires STARTTLS and then AUTH before it takes mail."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    catcher = _Catcher()
    controller = Controller(
        catcher,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    controller.start()
    controller.cert = cert  # type: ignore[attr-defined]
    controller.catcher = catcher  # type: ignore[attr-defined]
    try:
        yield controller
    finally:
        controller.stop()


def _email() -> OutgoingEmail:
    return OutgoingEmail(
        message_id="<test-1@acme-talent.example>",
        from_name="Acme Talent",
        from_address="no-reply@acme-talent.example",
        to_name="Ada Lovelace",
        to_address="ada@example.com",
        reply_to="support@acme-talent.example",
        subject="Hello",
        text="Hello Ada",
        html="<p>Hello Ada</p>",
        headers={},
    )


def _sender(server: Any, **overrides: Any) -> SmtpSender:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_starttls": True,
        "smtp_cert_bundle": str(server.cert),
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "smtp_timeout_s": 5,
    }
    values.update(overrides)
    return SmtpSender(Settings.model_validate(values))


async def test_with_starttls_and_credentials_the_email_is_delivered_encrypted(
    strict_server: Any,
) -> None:
    await _sender(strict_server).send(_email())
    assert strict_server.catcher.caught[-1] == (
        "no-reply@acme-talent.example",
        ["ada@example.com"],
        True,
    )


async def test_a_wrong_password_is_retried_not_failed(strict_server: Any) -> None:
    with pytest.raises(DeliveryError) as refused:
        await _sender(strict_server, smtp_password="wrong").send(_email())
    assert refused.value.permanent is False
    assert "535" in refused.value.reason


async def test_without_starttls_the_server_refuses_us_and_the_email_waits(
    strict_server: Any,
) -> None:
    with pytest.raises(DeliveryError) as refused:
        await _sender(strict_server, smtp_starttls=False).send(_email())
    assert refused.value.permanent is False
    assert "STARTTLS" in refused.value.reason
    anonymous = {"smtp_starttls": False, "smtp_username": None, "smtp_password": None}
    with pytest.raises(DeliveryError) as refused:
        await _sender(strict_server, **anonymous).send(_email())
    assert refused.value.permanent is False
    assert refused.value.reason.startswith("530")


async def test_an_untrusted_certificate_is_not_accepted(strict_server: Any) -> None:
    with pytest.raises(DeliveryError) as refused:
        await _sender(strict_server, smtp_cert_bundle=None).send(_email())
    assert refused.value.permanent is False
