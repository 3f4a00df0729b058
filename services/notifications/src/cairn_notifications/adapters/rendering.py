"""Rendering emails with Jinja2: HTML autoescaped, plain text as written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cairn_notifications.domain.catalogue import EmailKind
from cairn_notifications.domain.money import format_money


@dataclass(frozen=True)
class Brand:
    """How a marketplace's emails look and whom they come from."""

    display_name: str
    from_address: str
    support_address: str
    logo_url: str | None
    accent_colour: str
    # False for the deployment's default branding (the marketplace's has not arrived).
    own: bool = True


@dataclass(frozen=True)
class Person:
    """Someone an email goes to."""

    email: str
    name: str
    role: str
    user_id: str | None = None


@dataclass(frozen=True)
class ContractView:
    """What the templates may say about the contract."""

    contract_id: str
    job_title: str
    customer_name: str
    freelancer_name: str


@dataclass(frozen=True)
class RenderedEmail:
    """Subject and both bodies of one email."""

    subject: str
    text: str
    html: str


def format_date(value: datetime) -> str:
    """``2025-03-17T09:30Z`` -> ``17 March 2025, 09:30 UTC``."""
    moment = value.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def _environment(autoescape: bool) -> Environment:
    # .html files are always escaped; subjects (from strings) are header text, not HTML.
    env = Environment(
        loader=PackageLoader("cairn_notifications", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=autoescape),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = _money
    env.filters["date"] = format_date
    return env


class EmailRenderer:
    """Renders one catalogue email for one recipient."""

    def __init__(self) -> None:
        self._files = _environment(autoescape=True)
        self._subjects = _environment(autoescape=False)

    def render(self, kind: EmailKind, context: dict[str, Any]) -> RenderedEmail:
        """Subject, text and HTML of ``kind`` with ``context`` (event, brand, recipient...)."""
        subject = self._subjects.from_string(kind.subject).render(context)
        subject = " ".join(subject.split())  # a header: one line, no injected breaks
        text = self._files.get_template(f"{kind.template}.txt").render(context)
        html = self._files.get_template(f"{kind.template}.html").render(context)
        return RenderedEmail(subject=subject, text=text, html=html)
