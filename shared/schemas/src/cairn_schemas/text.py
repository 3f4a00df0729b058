"""Characters no Cairn text may carry, and how single-line text is normalised.

Control characters break what text is used for downstream: a CR/LF in a name made the
email header that carries it impossible to build (the email stayed unsent for good), NUL
cannot be stored in PostgreSQL, and the bidirectional overrides and isolates (U+202A to
U+202E, U+2066 to U+2069) let a name or a subject display as something it is not. So:

- **multi-line text** (descriptions, messages, cover letters) keeps tab, LF and CR and
  may not hold any other C0 control, DEL, the C1 controls or the bidi controls;
- **single-line text** (names, titles, a marketplace's display name) may hold none of
  those, nor tab, LF or CR: :func:`clean_line` turns each run of them into one space.
"""

from __future__ import annotations

import re

_BIDI = "\u202a-\u202e\u2066-\u2069"
_C1 = "\x7f-\x9f"  # DEL and the C1 controls (NEL U+0085 among them)

#: Characters multi-line text may not hold: C0 except tab, LF and CR; DEL; C1; bidi controls.
FORBIDDEN_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_C1}{_BIDI}]")
#: Characters single-line text may not hold: every control, line and paragraph separators too.
FORBIDDEN_IN_LINE = re.compile(f"[\x00-\x1f{_C1}{_BIDI}\u2028\u2029]+")


def has_forbidden(value: str) -> bool:
    """True if ``value`` holds a character no text may hold (see FORBIDDEN_IN_TEXT)."""
    return FORBIDDEN_IN_TEXT.search(value) is not None


def clean_line(value: str) -> str:
    """``value`` as one line: every run of control, separator or bidi characters becomes a
    single space, and the ends are stripped."""
    return FORBIDDEN_IN_LINE.sub(" ", value).strip()


def clean_text(value: str) -> str:
    """``value`` without the characters multi-line text may not hold (tab, LF, CR stay)."""
    return FORBIDDEN_IN_TEXT.sub("", value)
