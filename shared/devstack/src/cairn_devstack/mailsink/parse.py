"""Turn a caught SMTP transaction into the JSON record the page and the API show."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

__all__ = ["extract_links", "message_record"]

_URL = re.compile(r"https?://[^\s<>\"')\]]+")


class _HrefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def extract_links(text: str | None, html: str | None) -> list[str]:
    """Every http(s) link in the message, HTML hrefs first, without duplicates."""
    found: list[str] = []
    if html:
        collector = _HrefCollector()
        collector.feed(html)
        found.extend(h for h in collector.hrefs if h.startswith(("http://", "https://")))
    if text:
        found.extend(m.rstrip(".,;:") for m in _URL.findall(text))
    return list(dict.fromkeys(found))


def _part(msg: EmailMessage, subtype: str) -> str | None:
    body = msg.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_type() != f"text/{subtype}":
        return None
    content = body.get_content()
    return content if isinstance(content, str) else None


def message_record(
    message_id: int, mail_from: str, rcpt_tos: list[str], raw: bytes
) -> dict[str, Any]:
    """The stored form of one accepted message (envelope + parsed headers and parts)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)  # guaranteed by policy.default
    text = _part(msg, "plain")
    html = _part(msg, "html")
    return {
        "id": message_id,
        "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "from": mail_from,
        "to": list(rcpt_tos),
        "subject": str(msg.get("Subject", "")),
        "message_id": str(msg.get("Message-ID", "")),
        "headers": [[name, str(value)] for name, value in msg.items()],
        "text": text,
        "html": html,
        "links": extract_links(text, html),
        "raw": raw.decode("utf-8", "replace"),
    }
