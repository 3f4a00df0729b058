"""The email gallery: every email of the catalogue, rendered with sample data for two
differently branded marketplaces, written as HTML files an operator can open."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from cairn_schemas.base import Event
from cairn_schemas.events import ContractStarted, MilestoneCreated
from cairn_schemas.samples import AS_FREELANCER, SAMPLES

from cairn_notifications.adapters.rendering import Brand, EmailRenderer, RenderedEmail
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import EMAILS, EmailKind
from cairn_notifications.service.directory import (
    directory_from_event,
    recipients,
    template_context,
)


@dataclass(frozen=True)
class Showcase:
    """A sample marketplace: its branding and the currency its samples are in."""

    slug: str
    brand: Brand
    currency: str


SHOWCASES: tuple[Showcase, ...] = (
    Showcase(
        "acme-talent",
        Brand(
            display_name="Acme Talent",
            from_address="no-reply@acme-talent.example",
            support_address="support@acme-talent.example",
            logo_url="https://acme-talent.example/logo.png",
            accent_colour="#0a7cff",
        ),
        "EUR",
    ),
    Showcase(
        "kumo-crafts",
        Brand(
            display_name="Kumo Crafts",
            from_address="hello@kumo-crafts.example",
            support_address="help@kumo-crafts.example",
            logo_url=None,
            accent_colour="#b5446e",
        ),
        "JPY",
    ),
)


def sample_event(event_type: str) -> Event:
    """The sample of ``event_type``; "milestone created" as in freelancer mode, where it
    is emailed."""
    event = SAMPLES[event_type]
    if isinstance(event, MilestoneCreated):
        return event.model_copy(
            update={"created_by": "freelancer", "state": "approved", "actor": AS_FREELANCER}
        )
    return event


def _in_currency(event: Event, currency: str) -> Event:
    if getattr(event, "currency", None) is None:
        return event
    return event.model_copy(update={"currency": currency})


@dataclass(frozen=True)
class GalleryEntry:
    """One rendered email in the gallery."""

    showcase: Showcase
    kind: EmailKind
    recipient: str
    email: RenderedEmail


def render_samples(settings: Settings) -> list[GalleryEntry]:
    """Every (event, recipient) email of the catalogue for every showcase marketplace."""
    renderer = EmailRenderer()
    parties = SAMPLES[ContractStarted.event_type]
    assert isinstance(parties, ContractStarted)
    entries: list[GalleryEntry] = []
    for showcase in SHOWCASES:
        directory = directory_from_event(parties, showcase.brand)
        for event_type, kinds in EMAILS.items():
            event = _in_currency(sample_event(event_type), showcase.currency)
            # Every email of the catalogue, whichever party the sample's actor makes it go to.
            for kind in kinds.values():
                person = recipients(kind.audience, directory, settings)[0]
                context = template_context(event, kind, person, directory, settings)
                entries.append(
                    GalleryEntry(showcase, kind, person.email, renderer.render(kind, context))
                )
    return entries


def render_gallery(out: Path, settings: Settings) -> list[Path]:
    """Write each email as ``<out>/<marketplace>/<template>.html`` (and ``.txt``) plus an
    ``index.html`` listing them with their subjects; return the HTML files written."""
    written: list[Path] = []
    rows: list[str] = []
    for entry in render_samples(settings):
        folder = out / entry.showcase.slug
        folder.mkdir(parents=True, exist_ok=True)
        page = folder / f"{entry.kind.template}.html"
        page.write_text(entry.email.html, encoding="utf-8")
        (folder / f"{entry.kind.template}.txt").write_text(
            f"Subject: {entry.email.subject}\n\n{entry.email.text}", encoding="utf-8"
        )
        written.append(page)
        link = f"{entry.showcase.slug}/{entry.kind.template}.html"
        rows.append(
            "<tr>"
            f"<td>{html.escape(entry.showcase.brand.display_name)}</td>"
            f"<td>{html.escape(entry.kind.audience)}</td>"
            f'<td><a href="{html.escape(link)}">{html.escape(entry.email.subject)}</a></td>'
            f"<td><code>{html.escape(entry.kind.template)}</code></td>"
            "</tr>"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Cairn email gallery</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        "tr:nth-child(even){background:#f4f5f7}</style></head><body>"
        f"<h1>Cairn email gallery</h1><p>{len(written)} emails.</p>"
        "<table><tr><th>Marketplace</th><th>To</th><th>Subject</th><th>Template</th></tr>"
        + "".join(rows)
        + "</table></body></html>",
        encoding="utf-8",
    )
    return written
