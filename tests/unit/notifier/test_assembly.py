"""Which senders the settings give the notifier."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.events.notification import Medium
from gateway.notifier.assembly import senders_for
from gateway.notifier.outbox import FolderOutbox
from gateway.notifier.smtp import SmtpSender
from gateway.runtime import enabled_services
from gateway.settings import load_settings


def test_without_smtp_or_twilio_the_notifier_refuses_to_start_naming_the_setting(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_SMTP_HOST"):
        senders_for(load_settings(data_dir=tmp_path))
    assert "notifier" not in enabled_services(load_settings(data_dir=tmp_path))


def test_dev_without_smtp_writes_to_the_outbox_folder(tmp_path: Path) -> None:
    senders = senders_for(load_settings(data_dir=tmp_path), outbox=True)
    assert isinstance(senders[Medium.EMAIL], FolderOutbox)
    assert isinstance(senders[Medium.SMS], FolderOutbox)
    assert "notifier" in enabled_services(load_settings(data_dir=tmp_path), dev=True)


def test_smtp_settings_give_an_smtp_sender_and_letters_always_exist(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, smtp={"host": "mail", "from": "p@ramq.example"})
    senders = senders_for(settings)
    assert isinstance(senders[Medium.EMAIL], SmtpSender)
    assert Medium.LETTER in senders
    assert Medium.SMS not in senders
    assert "notifier" in enabled_services(settings)


def test_smtp_without_a_from_address_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_SMTP"):
        senders_for(load_settings(data_dir=tmp_path, smtp={"host": "mail"}))
