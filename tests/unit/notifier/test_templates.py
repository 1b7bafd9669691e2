"""Templates: French and English, HTML escaped, plain text always, overridable per file."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.dates import long_date
from gateway.errors import ConfigurationError
from gateway.events.common import Due
from gateway.notifier.templates import TemplateLibrary

VALUES = {
    "office_name": "RAMQ",
    "reference": "PL-HP69-9MYG-AHW6",
    "received_at": datetime(2026, 11, 23, 14, 5, tzinfo=UTC),
    "received_at_iso": "2026-11-23T14:05:00+00:00",
    "due": Due(acknowledge_by=date(2026, 11, 25), respond_by=date(2026, 12, 21), policy="ramq"),
    "kind_label": "plainte",
    "status_label": "",
    "name": "Marie <script>alert(1)</script>",
    "represented_name": None,
    "verify_url": "https://plaintes.example.org/v1/verify/email?token=abc&x=1",
    "link_valid_days": 5,
    "receipt_sha256": "a" * 64,
}


def test_the_french_acknowledgement_gives_reference_dates_link_and_receipt() -> None:
    message = TemplateLibrary().render("acknowledgement", "fr", VALUES)
    assert message.language == "fr"
    assert "PL-HP69-9MYG-AHW6" in message.subject
    assert "25 novembre 2026" in message.text
    assert "21 décembre 2026" in message.text
    assert VALUES["verify_url"] in message.text
    assert "a" * 64 in message.text
    assert "PL-HP69-9MYG-AHW6" in message.sms
    assert "\n" not in message.sms
    assert len(message.sms) < 320


def test_html_escapes_what_people_wrote_and_text_keeps_it_as_is() -> None:
    message = TemplateLibrary().render("acknowledgement", "en", VALUES)
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "Marie <script>alert(1)</script>" in message.text
    assert 'href="https://plaintes.example.org/v1/verify/email?token=abc&amp;x=1"' in message.html
    assert "November 25, 2026" in message.text


def test_an_unknown_language_falls_back_to_the_office_default() -> None:
    assert (
        TemplateLibrary(default_language="en").render("acknowledgement", "nl", VALUES).language
        == "en"
    )
    assert TemplateLibrary().render("acknowledgement", None, VALUES).language == "fr"


def test_an_office_overrides_one_file_and_keeps_the_others(tmp_path: Path) -> None:
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "acknowledgement.txt.j2").write_text(
        "{% block subject %}Reçu {{ reference }}{% endblock %}"
        "{% block text %}Texte de l'office.{% endblock %}{% block sms %}SMS{% endblock %}"
    )
    library = TemplateLibrary(tmp_path)
    message = library.render("acknowledgement", "fr", VALUES)
    assert message.subject == "Reçu PL-HP69-9MYG-AHW6"
    assert message.text == "Texte de l'office.\n"
    assert "<html" in message.html  # the built-in HTML part still applies
    library.check()


def test_a_broken_template_is_found_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "status_update.txt.j2").write_text("{% block subject %}{% if %}")
    with pytest.raises(ConfigurationError, match=r"en/status_update\.txt\.j2, line 1"):
        TemplateLibrary(tmp_path).check()


def test_dates_read_as_people_write_them() -> None:
    assert long_date(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert long_date("2026-12-01", "en") == "December 1, 2026"
    assert long_date("2026-11-23T14:05:00+00:00", "fr") == "23 novembre 2026"


HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
FREE_TEXT = ["name", "represented_name", "message", "transferred_to"]


@pytest.mark.parametrize("template", ["acknowledgement", "status_update", "email_verification"])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_free_text_field_is_escaped_in_every_html_template(
    template: str, language: str
) -> None:
    """What a person wrote (name, the person represented) and what a case system wrote (the
    status message, the body a case went to) never reaches a mail's HTML as markup."""
    values = {**VALUES, "status_label": "transférée", **dict.fromkeys(FREE_TEXT, HOSTILE)}
    message = TemplateLibrary().render(template, language, values)
    assert "<script>" not in message.html
    assert "<img" not in message.html
    assert HOSTILE not in message.html
