"""docs/operations.md carries the configuration reference generated from the settings
classes, and it is up to date."""

from __future__ import annotations

from gen_config_reference import BEGIN, DOC, END, render, settings_of


def test_the_configuration_reference_is_current() -> None:
    doc = DOC.read_text()
    assert BEGIN in doc
    assert END in doc
    current = doc[doc.index(BEGIN) : doc.index(END) + len(END)]
    assert current == render(), (
        "docs/operations.md is stale: run "
        "`uv run --no-sync python deploy/gen_config_reference.py --write`"
    )


def test_every_setting_is_in_the_reference() -> None:
    doc = DOC.read_text()
    for service in ("contracts", "payments", "notifications"):
        for setting in settings_of(service):
            assert f"`{setting.env}`" in doc, setting.env


def test_shared_settings_are_the_same_in_every_service() -> None:
    """The reference lists the CAIRN_* settings once, so they must agree everywhere."""
    shared = [
        [(s.env, s.type, s.default) for s in settings_of(svc) if s.env.startswith("CAIRN_")]
        for svc in ("contracts", "payments", "notifications")
    ]
    assert shared[0] == shared[1] == shared[2]
