"""The aiosmtpd handler: accept every message (unless a fault says otherwise) and keep it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from cairn_devstack.mailsink.faults import SmtpFaults
from cairn_devstack.mailsink.parse import message_record
from cairn_devstack.mailsink.store import MessageStore

__all__ = ["SinkHandler", "make_smtp_protocol"]

log = logging.getLogger("cairn_devstack.mailsink")


class SinkHandler:
    """aiosmtpd hooks for RCPT and DATA."""

    def __init__(self, store: MessageStore, faults: SmtpFaults) -> None:
        self.store = store
        self.faults = faults

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse injected-bad recipients, else accept."""
        if self.faults.rejects(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected (injected fault)"
        if self.faults.take_tempfail("rcpt"):
            return "451 4.3.0 Temporary failure (injected fault), try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message, or fail/drop as the faults say."""
        if self.faults.take_drop():
            # Abort, not close: the client must see the connection die with no reply.
            transport = server.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            log.info("dropped connection from %s (injected fault)", session.peer)
            return "421 4.4.2 Connection dropped (injected fault)"
        if self.faults.take_tempfail("data"):
            return "451 4.3.0 Temporary failure (injected fault), try again later"
        raw = envelope.original_content or b""
        record = message_record(
            self.store.next_id(), envelope.mail_from or "", list(envelope.rcpt_tos), raw
        )
        self.store.add(record)
        log.info(
            "caught #%s from %s to %s: %s",
            record["id"],
            record["from"],
            record["to"],
            record["subject"],
        )
        return f"250 2.0.0 OK: queued as {record['id']}"


def _accept_any_login(*_args: Any) -> AuthResult:
    # Services configured with SMTP credentials (as in production) can log in with any.
    return AuthResult(success=True)


def make_smtp_protocol(handler: SinkHandler, hostname: str = "mailsink.local") -> SMTP:
    """One SMTP protocol instance per connection, as asyncio's create_server wants."""
    return SMTP(
        handler,
        hostname=hostname,
        enable_SMTPUTF8=True,
        authenticator=_accept_any_login,
        auth_require_tls=False,
    )
