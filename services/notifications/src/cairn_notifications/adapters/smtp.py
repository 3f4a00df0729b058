"""Sending one email over SMTP with aiosmtplib, and telling transient from permanent
failures (DESIGN §8: 4xx and dropped connections are retried, 5xx is final)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from cairn_schemas.text import clean_line

from cairn_notifications.config import Settings


class DeliveryError(Exception):
    """The SMTP server did not take the email; ``permanent`` says whether to retry."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class OutgoingEmail:
    """Everything the sender needs to put one email on the wire."""

    message_id: str
    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str | None
    subject: str
    text: str
    html: str
    headers: dict[str, str]


def build_message(email: OutgoingEmail) -> EmailMessage:
    """A multipart/alternative message (plain text first, then HTML)."""
    msg = EmailMessage()
    msg["Message-ID"] = email.message_id
    # Names and subjects are one line (the event contract cleans them); rows queued before
    # it did may still hold a CR/LF, which makes the header impossible to build.
    msg["From"] = Address(display_name=clean_line(email.from_name), addr_spec=email.from_address)
    msg["To"] = Address(display_name=clean_line(email.to_name), addr_spec=email.to_address)
    if email.reply_to:
        msg["Reply-To"] = email.reply_to
    msg["Subject"] = clean_line(email.subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    # Tells mail servers and out-of-office replies this is a machine-sent notification.
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in email.headers.items():
        msg[name] = value
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg


# 5xx answers that refuse *us* (authentication or TLS required, bad credentials), not the
# email: an operator fixes the configuration and the email should still go out.
_CONFIGURATION_CODES = frozenset({530, 534, 535, 538})


def _code_reason(code: int, message: str) -> DeliveryError:
    reason = f"{code} {message}".strip()
    permanent = 500 <= code < 600 and code not in _CONFIGURATION_CODES
    return DeliveryError(reason, permanent=permanent)


class SmtpSender:
    """Delivers emails to the configured SMTP server, one connection per email."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, email: OutgoingEmail) -> None:
        """Send ``email``; raise :class:`DeliveryError` if the server did not accept it."""
        s = self._settings
        try:
            message = build_message(email)
        except Exception as exc:
            # The email itself is at fault (an address the header cannot hold: the email
            # library raises ValueError, HeaderParseError or even AttributeError): final.
            raise DeliveryError(f"the email cannot be built: {exc!r}", permanent=True) from exc
        try:
            async with asyncio.timeout(s.smtp_send_deadline_s):
                errors, _ = await self._send(message, email)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            if first is None:
                raise DeliveryError("recipient refused", permanent=True) from exc
            raise _code_reason(first.code, first.message) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Our credentials are wrong: an operator can fix that, the email is not at fault.
            raise DeliveryError(
                f"SMTP authentication failed: {exc.code} {exc.message}", permanent=False
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _code_reason(exc.code, exc.message) from exc
        except (OSError, TimeoutError) as exc:  # refused, dropped, timed out
            raise DeliveryError(f"connection failed: {exc!r}", permanent=False) from exc
        except aiosmtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered
            raise DeliveryError(f"SMTP session failed: {exc!r}", permanent=False) from exc
        refused = errors.get(email.to_address)
        if refused is not None:
            raise _code_reason(refused.code, refused.message)

    async def _send(
        self, message: EmailMessage, email: OutgoingEmail
    ) -> tuple[dict[str, SMTPResponse], str]:
        s = self._settings
        return await aiosmtplib.send(
            message,
            sender=s.smtp_envelope_from or email.from_address,
            recipients=[email.to_address],
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_starttls if not s.smtp_use_tls else False,
            timeout=s.smtp_timeout_s,
            cert_bundle=s.smtp_cert_bundle,
        )
