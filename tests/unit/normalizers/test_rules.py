"""Kind, routing hints and abusive language: the default rules in French and English, and an
office's own rule files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ConfigurationError
from gateway.events.complaint import Kind
from gateway.normalizers.rules import (
    PatternIndex,
    fold,
    literal_anchors,
    load_rules,
    required_literal,
    words_of,
)

RULES = load_rules()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Je porte plainte : toujours pas reçu ma carte après trois mois.", Kind.COMPLAINT),
        ("Aucune réponse depuis six semaines, c'est inacceptable.", Kind.COMPLAINT),
        ("I want to complain: I never received my card and got no answer.", Kind.COMPLAINT),
        ("I still have not received my health insurance card.", Kind.COMPLAINT),
        ("I haven't received my card and nobody answers the phone.", Kind.COMPLAINT),
        ("Three months later I have still not heard from you.", Kind.COMPLAINT),
        ("J'ai appelé trois fois et personne ne répond au téléphone.", Kind.COMPLAINT),
        ("She has been waiting for 6 months for her card.", Kind.COMPLAINT),
        ("Why is my claim still pending? This is ridiculous.", Kind.COMPLAINT),
        ("J'attends depuis le mois d'août, c'est scandaleux.", Kind.COMPLAINT),
        ("Mon dossier est toujours en attente.", Kind.COMPLAINT),
        ("Ma mère attend sa carte depuis trois mois.", Kind.COMPLAINT),
        ("He has been waiting for his card for 6 months.", Kind.COMPLAINT),
        ("Je n'arrive pas à joindre le service depuis deux semaines.", Kind.COMPLAINT),
        ("Cela fait 4 mois que j'attends ma carte.", Kind.COMPLAINT),
        ("On m'a raccroché au nez.", Kind.COMPLAINT),
        ("Votre site web ne fonctionne pas.", Kind.COMPLAINT),
        ("Your agent hung up on me twice.", Kind.COMPLAINT),
        ("The online form does not work.", Kind.COMPLAINT),
        ("It has been 3 months and I still have no card.", Kind.COMPLAINT),
        ("Your website keeps crashing when I try to log in.", Kind.COMPLAINT),
        ("I applied for my card in August and it never arrived.", Kind.COMPLAINT),
        ("My card still hasn't arrived.", Kind.COMPLAINT),
        ("I was put on hold twice.", Kind.COMPLAINT),
        ("I called and stayed on hold for an hour.", Kind.COMPLAINT),
        ("Ma carte n'est jamais arrivée.", Kind.COMPLAINT),
        ("Le remboursement ne m'est toujours pas parvenu.", Kind.COMPLAINT),
        ("J'ai été en attente pendant une heure au téléphone.", Kind.COMPLAINT),
        ("Ce médecin facture des frais illégaux.", Kind.DENUNCIATION),
        ("Merci beaucoup pour votre aide, tout est réglé.", Kind.COMMENT),
        ("Thank you very much for your help with my file.", Kind.COMMENT),
        (
            "Je veux dénoncer une fraude : ce cabinet facture des soins jamais faits.",
            Kind.DENUNCIATION,
        ),
        ("Reporting fraud: this clinic submits false claims.", Kind.DENUNCIATION),
        ("Merci pour votre accueil, bravo à l'équipe du guichet.", Kind.COMMENT),
        ("Just wanted to say thank you for the quick service.", Kind.COMMENT),
        ("Comment faire pour changer mon adresse ?", Kind.INFORMATION_REQUEST),
        ("How do I renew my card?", Kind.INFORMATION_REQUEST),
        ("Bonjour.", Kind.UNKNOWN),
    ],
)
def test_given_a_text_then_its_kind(text: str, kind: Kind) -> None:
    assert RULES.classify(fold(text))[0] is kind


@pytest.mark.parametrize(
    "text",
    [
        "Merci.",  # "merci" alone, not "merci pour": no comment rule fires
        "Mes plaintes précédentes ont été bien traitées.",  # plural, about the past
        "Can you believe it?",  # "can i" is a question rule; "can you" is not
        "I have received my card, it arrived on Monday.",  # received, not "not received"
        "Nobody else was in the waiting room.",  # "nobody", not "nobody answers"
        "I am waiting for your call.",  # waiting, but for no length of time
        "Je suis client depuis trois ans.",  # a duration, but no waiting
        "My husband does not work.",  # a person, not a website
        "Mon bras ne fonctionne plus.",
        "My card arrived yesterday, thank you.",  # arrived, not "never arrived"
        "Please hold my mail while I am away.",  # hold, not "on hold"
        "Ma carte est arrivée hier.",
    ],
)
def test_near_misses_stay_unknown(text: str) -> None:
    assert RULES.classify(fold(text))[0] is Kind.UNKNOWN


def test_given_a_fraud_report_with_dissatisfaction_then_denunciation_wins_the_tie() -> None:
    text = fold("Plainte : je dénonce une fraude")  # complaint 3, denunciation 3
    assert RULES.classify(text)[0] is Kind.DENUNCIATION


@pytest.mark.parametrize(
    ("text", "body", "rule"),
    [
        ("Mon médecin a été impoli et négligent", "professional-order", "professional_misconduct"),
        (
            "I want to report the doctor's misconduct",
            "professional-order",
            "professional_misconduct",
        ),
        ("J'ai eu des effets indésirables graves", "pharmacovigilance", "adverse_drug_effect"),
        ("Severe side effects from the new drug", "pharmacovigilance", "adverse_drug_effect"),
        ("Ma mutuelle refuse de payer", "complementary-insurer", "complementary_insurance"),
        (
            "Mon assurance collective ne couvre pas ce médicament",
            "complementary-insurer",
            "complementary_insurance",
        ),
        (
            "My private insurer says it is your job",
            "complementary-insurer",
            "complementary_insurance",
        ),
        ("Attente de 14 heures aux urgences", "health-establishment", "health_establishment"),
    ],
)
def test_given_a_text_for_another_body_then_a_routing_hint_names_the_rule(
    text: str, body: str, rule: str
) -> None:
    assert (body, rule) in [(hint.body, hint.rule) for hint in RULES.routing(fold(text))]


@pytest.mark.parametrize(
    "text",
    [
        "Ma carte n'est jamais arrivée",
        "Le remboursement de mes lunettes se fait attendre",  # reimbursements are ours
        "Your fee schedule changed and my refund is late",
        "Le tarif de la consultation",
    ],
)
def test_given_a_text_about_our_own_service_then_no_routing_hint(text: str) -> None:
    assert RULES.routing(fold(text)) == []


@pytest.mark.parametrize(
    ("text", "abusive"),
    [
        ("Bande de cons, incompétents de merde", True),
        ("You are all morons", True),
        ("Je vais vous tuer", True),
        ("Je suis très en colère et déçu", False),
        ("Scunthorpe and consultation", False),  # whole words only
    ],
)
def test_abusive_language(text: str, abusive: bool) -> None:
    assert RULES.is_abusive(fold(text)) is abusive


ABUSIVE = RULES.abusive
LONGER_PHRASES = sorted(phrase for phrase in ABUSIVE.phrases if len(phrase) > 1)
PHRASE_PIECES = st.one_of(  # the words of phrases, phrases whole, phrases cut short
    st.sampled_from([(word,) for phrase in LONGER_PHRASES for word in phrase] + [("x",)]),
    st.sampled_from(LONGER_PHRASES),
    st.sampled_from([phrase[:-1] for phrase in LONGER_PHRASES]),
    st.sampled_from([phrase[1:] for phrase in LONGER_PHRASES]),
)


@given(st.lists(PHRASE_PIECES, max_size=8).map(lambda pieces: [w for p in pieces for w in p]))
def test_property_abusive_words_are_found_exactly_where_a_phrase_of_the_list_is(
    words: list[str],
) -> None:
    present = any(
        tuple(words[start : start + len(phrase)]) == phrase
        for phrase in ABUSIVE.phrases
        for start in range(len(words))
    )
    assert ABUSIVE.found_in_words(words) is present


def test_given_an_office_rules_file_then_its_rules_apply(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[kind_settings]\nmin_score = 1\n"
        "[[kind]]\nid = 'office.praise'\nkind = 'comment'\npatterns = ['\\bsuper\\b']\n"
        "[[routing]]\nid = 'office.dental'\nbody = 'dental-board'\npatterns = ['\\bdentiste\\b']\n"
    )
    words = tmp_path / "words.txt"
    words.write_text("# our list\nzut alors\n")
    office = load_rules(rules, words)
    assert office.classify(fold("Super accueil"))[0] is Kind.COMMENT
    assert [hint.rule for hint in office.routing(fold("mon dentiste"))] == ["office.dental"]
    assert office.is_abusive(fold("Zut   alors !"))
    assert not office.is_abusive(fold("connard"))  # the office's list replaced the default


def test_given_a_broken_rules_file_then_a_configuration_error_names_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[kind]]\nid = 'bad'\nkind = 'complaint'\npatterns = ['(unclosed']\n")
    with pytest.raises(ConfigurationError, match="bad"):
        load_rules(rules)
    rules.write_text("[[kind]]\nid = 'x'\nkind = 'praise'\npatterns = ['a']\n")
    with pytest.raises(ConfigurationError, match="praise"):
        load_rules(rules)


@pytest.mark.parametrize(
    ("pattern", "anchors"),
    [
        (r"\bplainte\b", ("plainte",)),
        (r"\bcomplain(?:t|ts)?\b", ("complain",)),
        (r"\bdelais?\b", ("delai",)),  # the optional "s" is not part of the anchor
        (r"\b(?:college|ordre) des", ("college", "ordre")),
        (r"\b(?:medecin|infirmi\w+)\b", ("medecin", "infirmi")),
        (r"\bj.aimerais", None),
        (r"a|b", None),
        (r"\b(?:a|bc)?x", None),
    ],
)
def test_literal_anchors(pattern: str, anchors: tuple[str, ...] | None) -> None:
    assert literal_anchors(pattern) == anchors


REQUIRED_LITERALS = [
    (r"\bj.aimerais savoir\b", "aimerais savoir"),
    (r"\b(?:a |an )?(?:mistake|error)s?\b", None),
    (r"\bmerci(?:s)? beaucoup", " beaucoup"),  # the longest of the runs outside groups
    (r"delais?\s+depasses?", "depasse"),  # the optional "s" is not required
    (r"ab{2}cdef", "cdef"),  # nor a counted one, nor the count's digits
    (r"x{1,3}123456", "123456"),
    (r"[abcdef]+xyz", "xyz"),  # a class's members are not text
    (r"[(]abc|xyz", None),  # a top-level alternative, even after a "(" in a class
    (r"(?:ab|cd)efg|hij", None),
    (r"(?!nope)yes sir", "yes sir"),
    (r"\d{4} \w+ plainte", " plainte"),
    (r"a.b", None),
]


@pytest.mark.parametrize(("pattern", "required"), REQUIRED_LITERALS)
def test_required_literal(pattern: str, required: str | None) -> None:
    assert required_literal(pattern) == required


PIECES = st.sampled_from(
    [
        *("j'aimerais savoir", "abbcdef", "xx123456", "fxyz", "(abc", "xyz", "hij", "abefg"),
        *("yes sir", "1234 dossier plainte", "merci beaucoup", "mercis beaucoup", "a-b", " "),
        *("delais depasse", "delai  depasses"),
    ]
)


@given(st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=12).map("".join))
def test_property_a_match_always_holds_the_required_literal(text: str) -> None:
    for pattern, _ in REQUIRED_LITERALS:
        required = required_literal(pattern)
        if required is not None and re.search(pattern, text):
            assert required in text


ALL_RULES = (*RULES.kind_rules, *RULES.routing_rules)
WORDS = st.sampled_from(
    [
        "plainte",
        "delai",
        "delais",
        "college",
        "ordre des medecins",
        "je porte plainte",
        "fraude",
        "how do i",
        "comment faire",
        "mon medecin a ete impoli",
        "side effects",
        "x",
        "  ",
        "\n",
    ]
)


@given(st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=30).map(" ".join))
def test_property_the_index_finds_exactly_the_rules_a_plain_search_finds(text: str) -> None:
    folded = fold(text)
    plain = {
        number
        for number, rule in enumerate(ALL_RULES)
        if any(pattern.search(folded) for pattern in rule.patterns)
    }
    assert RULES.index.owners_matching(folded) == plain


def test_given_rules_without_anchors_then_the_index_still_searches_them() -> None:
    index = PatternIndex([(re.compile(r"a|b"), 0), (re.compile(r"\bj.aimerais"), 1)])
    assert index.owners_matching("j'aimerais") == {0, 1}
    assert index.owners_matching("xyz") == set()


def test_given_one_text_then_evaluate_gives_kind_fired_rules_and_routing_at_once() -> None:
    folded = fold("Je porte plainte contre mon médecin : effets secondaires du médicament.")
    outcome = RULES.evaluate(folded)
    assert outcome.kind is Kind.COMPLAINT
    assert outcome.fired == RULES.classify(folded)[1]
    assert "fr.complaint.explicit" in outcome.fired
    assert outcome.routing == RULES.routing(folded)
    assert outcome.routing  # the pharmacovigilance hint


@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=127))))
def test_property_words_of_are_the_unicode_words_of_any_text(text: str) -> None:
    assert words_of(text) == re.findall(r"\w+", text)
