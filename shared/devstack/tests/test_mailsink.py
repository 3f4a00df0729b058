"""The SMTP sink through a real SMTP client (aiosmtplib), and its page and JSON API."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage

import aiosmtplib
import pytest
from cairn_devstack.testing import MailSinkProcess


@pytest.fixture(autouse=True)
def _fresh_sink(mail_sink: MailSinkProcess) -> Iterator[None]:
    mail_sink.start()  # in case a test left it down
    mail_sink.clear_faults()
    mail_sink.clear()
    yield
    mail_sink.start()
    mail_sink.clear_faults()


def _email(to: str = "customer@example.com", subject: str = "Milestone funded") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Acme Talent <no-reply@acme.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<m-1@cairn.test>"
    msg.set_content("Your milestone is funded: https://acme.example/contracts/42\n")
    msg.add_alternative(
        "<p>Your milestone is <b>funded</b>. "
        '<a href="https://acme.example/contracts/42?tab=milestones">Open contract</a></p>',
        subtype="html",
    )
    return msg


async def _send(
    sink: MailSinkProcess, msg: EmailMessage
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    result: tuple[dict[str, aiosmtplib.SMTPResponse], str] = await aiosmtplib.send(
        msg, hostname=sink.smtp_host, port=sink.smtp_port, timeout=5
    )
    return result


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


async def test_caught_message_has_envelope_parts_and_links(mail_sink: MailSinkProcess) -> None:
    await _send(mail_sink, _email())

    [m] = mail_sink.messages()
    assert m["from"] == "no-reply@acme.example"
    assert m["to"] == ["customer@example.com"]
    assert m["subject"] == "Milestone funded"
    assert m["message_id"] == "<m-1@cairn.test>"
    assert "https://acme.example/contracts/42" in m["text"]
    assert "<b>funded</b>" in m["html"]
    assert m["links"] == [
        "https://acme.example/contracts/42?tab=milestones",
        "https://acme.example/contracts/42",
    ]
    assert ["Subject", "Milestone funded"] in m["headers"]


async def test_page_lists_mail_and_renders_one_message(mail_sink: MailSinkProcess) -> None:
    await _send(mail_sink, _email(subject="Work approved <3"))
    [m] = mail_sink.messages()

    index = _get(mail_sink.http_url + "/")
    page = _get(f"{mail_sink.http_url}/messages/{m['id']}")

    assert "Work approved &lt;3" in index
    assert "customer@example.com" in index
    assert "https://acme.example/contracts/42?tab=milestones" in index
    assert "<iframe sandbox srcdoc=" in page
    assert "&lt;b&gt;funded&lt;/b&gt;" in page  # the HTML part, escaped into srcdoc
    assert "Your milestone is funded: https://acme.example/contracts/42" in page
    assert "no-reply@acme.example" in page


async def test_tempfail_answers_451_then_mail_goes_through(mail_sink: MailSinkProcess) -> None:
    mail_sink.set_faults(tempfail_next=2)

    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await _send(mail_sink, _email())
        assert refused.value.code == 451
    await _send(mail_sink, _email())

    assert len(mail_sink.messages()) == 1
    assert mail_sink.set_faults()["injected"]["tempfail"] >= 2


async def test_tempfail_at_rcpt(mail_sink: MailSinkProcess) -> None:
    mail_sink.set_faults(tempfail_next=1, tempfail_at="rcpt")

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await _send(mail_sink, _email())

    assert refused.value.recipients[0].code == 451
    assert mail_sink.messages() == []


async def test_rejected_recipient_gets_550_and_others_still_receive(
    mail_sink: MailSinkProcess,
) -> None:
    mail_sink.set_faults(reject_recipients=["Gone@Example.com"])

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await _send(mail_sink, _email(to="gone@example.com"))
    assert refused.value.recipients[0].code == 550

    msg = _email(to="gone@example.com, ok@example.com")
    errors, _ = await _send(mail_sink, msg)
    assert "gone@example.com" in errors
    [m] = mail_sink.messages()
    assert m["to"] == ["ok@example.com"]


async def test_dropped_connection_loses_the_message(mail_sink: MailSinkProcess) -> None:
    mail_sink.set_faults(drop_next=1)

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await _send(mail_sink, _email())
    assert mail_sink.messages() == []

    await _send(mail_sink, _email())
    assert len(mail_sink.messages()) == 1


async def test_outage_refuses_connections_and_restart_keeps_history(
    mail_sink: MailSinkProcess,
) -> None:
    await _send(mail_sink, _email(subject="before outage"))

    mail_sink.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await _send(mail_sink, _email())
    mail_sink.start()
    await _send(mail_sink, _email(subject="after outage"))

    assert [m["subject"] for m in mail_sink.messages()] == ["before outage", "after outage"]


async def test_filter_by_recipient_and_clear(mail_sink: MailSinkProcess) -> None:
    await _send(mail_sink, _email(to="a@example.com"))
    await _send(mail_sink, _email(to="b@example.com"))

    assert [m["to"] for m in mail_sink.messages(to="B@example.com")] == [["b@example.com"]]
    found = await mail_sink.await_messages(2)
    assert len(found) == 2
    mail_sink.clear()
    assert mail_sink.messages() == []
