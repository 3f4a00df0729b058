"""Templates render with every sample for every branding, and user text is escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import all_kinds, notices_for
from cairn_notifications.entrypoints.cli import main
from cairn_notifications.service.directory import (
    default_brand,
    directory_from_event,
    recipients,
    template_context,
)
from cairn_notifications.service.gallery import SHOWCASES, render_samples
from cairn_schemas.base import Party
from cairn_schemas.events import ProposalSubmitted
from cairn_schemas.samples import SAMPLES


def test_every_email_renders_for_both_showcase_marketplaces() -> None:
    entries = render_samples(Settings())
    assert len(entries) == len(all_kinds()) * len(SHOWCASES)
    for entry in entries:
        assert entry.email.subject
        assert "\n" not in entry.email.subject
        assert entry.showcase.brand.display_name in entry.email.html
        assert entry.showcase.brand.support_address in entry.email.text
        assert entry.showcase.brand.accent_colour in entry.email.html
    yen = [e for e in entries if e.showcase.currency == "JPY"]
    assert any("¥150,000" in e.email.text for e in yen)
    assert not any("¥1,500.00" in e.email.text for e in yen)


def _render_proposal(cover_letter: str, name: str = "Grace Hopper", title: str = "Bakery") -> Any:
    event = SAMPLES[ProposalSubmitted.event_type].model_copy(
        update={
            "cover_letter": cover_letter,
            "job_title": title,
            "freelancer": Party(user_id="u1", email="g@example.com", name=name),
        }
    )
    assert isinstance(event, ProposalSubmitted)
    settings = Settings()
    directory = directory_from_event(event, default_brand(settings))
    [kind] = notices_for(event)
    [person] = recipients(kind.audience, directory, settings)
    return EmailRenderer().render(kind, template_context(event, kind, person, directory, settings))


def test_html_in_a_cover_letter_is_shown_as_text_not_run() -> None:
    letter = '<script>alert("x")</script><b>Hire me</b> & <a href="http://evil.example">me</a>'
    email = _render_proposal(letter, name="<img src=x onerror=alert(1)>")
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;Hire me&lt;/b&gt;" in email.html
    assert 'href="http://evil.example"' not in email.html
    assert "<img src=x" not in email.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in email.html
    # The plain-text part is not HTML: it shows exactly what was written.
    assert letter in email.text


def test_subjects_are_plain_text_on_one_line() -> None:
    email = _render_proposal("hi", name="Tom & <Jerry>", title="Cakes\r\nBcc: victim@example.com")
    assert email.subject == "New proposal from Tom & <Jerry> for “Cakes Bcc: victim@example.com”"


def test_render_all_writes_every_email_for_two_marketplaces(tmp_path: Path) -> None:
    assert main(["render-all", "--out", str(tmp_path)]) == 0
    pages = sorted(tmp_path.glob("*/*.html"))
    assert len(pages) == len(all_kinds()) * 2
    assert {p.parent.name for p in pages} == {s.slug for s in SHOWCASES}
    index = (tmp_path / "index.html").read_text()
    assert index.count("<tr>") == len(pages) + 1
    kumo = (tmp_path / "kumo-crafts" / "milestone_funded.freelancer.html").read_text()
    assert "Kumo Crafts" in kumo
    assert "¥150,000" in kumo
