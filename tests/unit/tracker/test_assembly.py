"""The tracker as a service of the runtime and a command of the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.runtime import KNOWN_SERVICES, REGISTRY, enabled_services
from gateway.settings import load_settings
from gateway.tracker.assembly import complaint_fold, tracker_service
from gateway.tracker.timeline import entry_of
from tests.support.tracker import acknowledged, local, received


def test_the_tracker_runs_by_default_in_run_and_in_dev(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert "tracker" in KNOWN_SERVICES
    assert REGISTRY["tracker"] is tracker_service
    assert "tracker" in enabled_services(settings)
    assert "tracker" in enabled_services(settings, dev=True)


def test_run_only_tracker_and_tracker_rebuild_are_commands() -> None:
    assert build_parser().parse_args(["run", "--only", "tracker"]).only == ["tracker"]
    args = build_parser().parse_args(["tracker", "rebuild"])
    assert (args.command, args.tracker_command) == ("tracker", "rebuild")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tracker"])


def test_its_own_group_and_the_offices_policy_file_count_delays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN an office's own "ramq" in calendar days WHEN the fold counts THEN it uses it."""
    monkeypatch.delenv("GATEWAY_TRACKER_GROUP_ID", raising=False)
    assert load_settings(data_dir=tmp_path).tracker.group_id == "intake-gateway-tracker"
    policies = tmp_path / "policies.toml"
    policies.write_text(
        '[[policy]]\nname = "ramq"\nacknowledge_days = 3\nacknowledge_count = "calendar_days"\n'
        'respond_days = 30\nrespond_count = "calendar_days"\ncountry = "CA"\n'
        'subdivision = "QC"\ntimezone = "America/Montreal"\n'
    )
    settings = load_settings(data_dir=tmp_path, normalizer={"due_policies_file": policies})
    entries = [
        entry_of(received("calendar", local("ramq", 2026, 6, 23, 10))),
        entry_of(acknowledged("calendar", local("ramq", 2026, 6, 27, 10))),  # a Saturday
    ]
    complaint = None
    for entry in entries:
        assert entry is not None
        complaint = complaint_fold(settings)(complaint, entry)
    assert complaint is not None
    assert complaint.acknowledge_delay == 4  # calendar days (the built-in policy counts 2)


def test_indicators_takes_overdue_or_json_not_both() -> None:
    parse = build_parser().parse_args
    assert (parse(["indicators"]).overdue, parse(["indicators"]).json) == (False, False)
    assert parse(["indicators", "--overdue"]).overdue is True
    assert parse(["indicators", "--json"]).json is True
    with pytest.raises(SystemExit):
        parse(["indicators", "--overdue", "--json"])
