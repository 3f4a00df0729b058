"""Control characters in the event contract's text (issue 16): a name, a title or a
marketplace's display name is one clean line; multi-line text keeps its line breaks."""

from __future__ import annotations

import pytest
from cairn_schemas.base import Party
from cairn_schemas.events import MessagePosted
from cairn_schemas.samples import SAMPLES
from cairn_schemas.settings import Branding
from pydantic import ValidationError


def test_a_name_with_line_breaks_and_bidi_controls_becomes_one_clean_line() -> None:
    # A CR/LF in a name made the email header that carries it impossible to build.
    party = Party(user_id="u1", email="ada@x.test", name="Ada\r\nBcc: all@x.test\u202e\x85")
    assert party.name == "Ada Bcc: all@x.test"


def test_a_marketplace_display_name_is_one_line_too() -> None:
    brand = Branding(
        display_name="Acme\nTalent\u2066",
        from_address="hello@acme.test",
        support_address="help@acme.test",
    )
    assert brand.display_name == "Acme Talent"


def test_text_of_nothing_but_control_characters_is_refused() -> None:
    with pytest.raises(ValidationError):
        Party(user_id="u1", email="ada@x.test", name="\r\n\u202e")


def test_multi_line_text_keeps_its_line_breaks_and_loses_other_controls() -> None:
    sample = SAMPLES[MessagePosted.event_type]
    message = MessagePosted.model_validate(
        sample.model_dump() | {"body": "Hello,\r\n\tsee you\x00 soon\u202e\x07"}
    )
    assert message.body == "Hello,\r\n\tsee you soon"
