"""Settings from GATEWAY_ variables: contract names, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.components import own_contacts
from gateway.errors import ConfigurationError
from gateway.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_given_no_variables_then_the_contract_defaults_apply() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap == "localhost:9092"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.imap.mailbox == "INBOX"


def test_given_contract_variables_then_they_reach_the_nested_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("GATEWAY_IMAP_HOST", "imap.example.org")
    monkeypatch.setenv("GATEWAY_IMAP_TLS", "false")
    monkeypatch.setenv("GATEWAY_SMTP_FROM", "plaintes@example.org")
    monkeypatch.setenv("GATEWAY_TWILIO_API_BASE", '{"verify": "http://127.0.0.1:4010"}')
    monkeypatch.setenv("GATEWAY_POSTAL_INBOX", "/srv/scans")
    settings = load_settings()
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.imap.host == "imap.example.org"
    assert settings.imap.tls is False
    assert settings.smtp.from_ == "plaintes@example.org"
    assert str(settings.twilio.api_base["verify"]) == "http://127.0.0.1:4010/"
    assert str(settings.postal.inbox) == "/srv/scans"


def test_given_one_secret_or_a_list_then_both_give_rotatable_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRETS", '{"a": "s1", "contact-form": ["new", "old"]}')
    secrets = load_settings().webhook_secrets
    assert [s.get_secret_value() for s in secrets["a"]] == ["s1"]
    assert [s.get_secret_value() for s in secrets["contact-form"]] == ["new", "old"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_IMAP_PORT", "imap"),
        ("GATEWAY_HTTP_PORT", "99999"),
        ("GATEWAY_PUBLIC_URL", "not a url"),
        ("GATEWAY_WEBHOOK_SECRETS", "{not json"),
        ("GATEWAY_KAFKA_BOOTSTRAP", ""),
        ("GATEWAY_IMAP_TLS", "maybe"),
    ],
)
def test_given_an_invalid_value_then_the_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(name)
    assert "\n" not in str(caught.value)


def test_given_bad_json_in_a_nested_object_then_the_error_names_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_TWILIO_API_BASE", "{oops")
    with pytest.raises(ConfigurationError, match="GATEWAY_TWILIO_"):
        load_settings()


def test_given_an_invalid_setting_then_the_command_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_HTTP_PORT", "eighty")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "topics", "create"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "GATEWAY_HTTP_PORT" in result.stderr


def test_given_a_shared_mailbox_then_the_main_account_claims_with_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_IMAP_HOST", "imap.example.org")
    monkeypatch.setenv("GATEWAY_IMAP_SHARED", "true")
    monkeypatch.setenv("GATEWAY_IMAP_CLAIM_TIMEOUT_S", "120")
    monkeypatch.setenv(
        "GATEWAY_IMAP_MAILBOXES", '[{"host": "imap.example.org", "mailbox": "Plaintes"}]'
    )
    main, other = load_settings().imap.accounts()
    assert (main.shared, main.claim_timeout_s) == (True, 120.0)
    assert other.shared is False  # one gateway on that mailbox unless said


def test_the_offices_own_contacts_come_from_their_variable_and_the_named_senders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_NORMALIZER_OWN_CONTACTS", '["1 800 561-9749", "info@example.org"]')
    monkeypatch.setenv("GATEWAY_SMTP_FROM", "Bureau des plaintes <plaintes@example.org>")
    monkeypatch.setenv("GATEWAY_TWILIO_FROM", "+15145550100")
    monkeypatch.setenv("GATEWAY_IMAP_HOST", "imap.example.org")
    monkeypatch.setenv("GATEWAY_IMAP_USER", "complaints@example.org")
    settings = load_settings()
    assert settings.normalizer.own_contacts == ["1 800 561-9749", "info@example.org"]
    assert own_contacts(settings) == [
        "Bureau des plaintes <plaintes@example.org>",
        "+15145550100",
        "complaints@example.org",
    ]
