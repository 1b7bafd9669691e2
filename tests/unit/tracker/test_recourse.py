"""The recourse of each policy: built in from the offices' pages, or the office's own file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.tracker.recourse import BUILTIN_RECOURSES, RecourseBook


def test_the_built_in_recourses_name_each_offices_body_in_both_languages() -> None:
    book = RecourseBook.load(None)
    ramq, inami, france = book.of("ramq"), book.of("inami"), book.of("fr-marianne")
    assert ramq is not None
    assert ramq.name["fr"] == "Protecteur du citoyen"
    assert inami is not None
    assert (inami.phone, inami.website) == ("0800 99 961", "https://www.mediateurfederal.be")
    assert france is not None
    assert "caisse" in france.name["fr"]
    assert book.of("ars") is not None
    assert book.of("unknown-policy") is None
    assert book.of(None) is None
    for recourse in BUILTIN_RECOURSES.values():
        assert set(recourse.name) == set(recourse.how) == {"fr", "en"}


def test_an_offices_file_adds_and_replaces_recourses(tmp_path: Path) -> None:
    path = tmp_path / "recourse.toml"
    path.write_text(
        '[ramq]\nname = { fr = "Commissaire aux plaintes", en = "Complaints commissioner" }\n'
        'how = { fr = "Écrivez-lui.", en = "Write to them." }\nemail = "commissaire@ramq.example"\n'
        '[cisss]\nname = { fr = "Commissaire local", en = "Local commissioner" }\n'
        'how = { fr = "Appelez.", en = "Call." }\nphone = "514 555-0000"\n',
        encoding="utf-8",
    )
    book = RecourseBook.load(path)
    ramq = book.of("ramq")
    assert ramq is not None
    assert ramq.name["en"] == "Complaints commissioner"
    assert ramq.email == "commissaire@ramq.example"
    assert ramq.website is None
    cisss = book.of("cisss")
    assert cisss is not None
    assert cisss.phone == "514 555-0000"
    assert book.of("inami") == BUILTIN_RECOURSES["inami"]


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ('[ramq]\nname = "Protecteur"\nhow = { fr = "a", en = "b" }\n', "name needs fr and en"),
        ('[ramq]\nname = { fr = "a", en = "b" }\nhow = { fr = "a" }\n', "how needs fr and en"),
        ('[ramq]\nname = { fr = "a", en = "b" }\nhow = { fr = "a", en = "b" }\nfax = "1"\n', "fax"),
        (
            '[ramq]\nname = { fr = "a", en = "b" }\nhow = { fr = "a", en = "b" }\nphone = 5\n',
            "phone",
        ),
        ("[ramq\n", "GATEWAY_TRACKER_RECOURSE_FILE"),
    ],
)
def test_a_broken_file_stops_start_up_naming_the_setting(
    tmp_path: Path, text: str, fault: str
) -> None:
    path = tmp_path / "recourse.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="GATEWAY_TRACKER_RECOURSE_FILE") as refused:
        RecourseBook.load(path)
    assert fault in str(refused.value)
    with pytest.raises(ConfigurationError, match="GATEWAY_TRACKER_RECOURSE_FILE"):
        RecourseBook.load(tmp_path / "missing.toml")
