"""Web-form submissions as they come: each from another person, with their own name, address,
phone and text (~1.2-1.8 KB of JSON), never one body repeated (a repeated body is flattered by
caches: issue 29 measured 3.3 ms of CPU a submission for one body against 5.7 ms for distinct
people). Deterministic for a seed; ``tag`` makes the people of one run differ from any other's,
so that no run finds the previous run's complaints as duplicates.

``form_letters``: a campaign, as associations run them: hundreds of people sending one template
letter, each with their own name, file number, address and phone filled in."""

from __future__ import annotations

import json
import random

FIRST = [
    "Marie", "Jean", "Sophie", "Luc", "Nathalie", "Pierre", "Isabelle", "Mohamed", "Fatima",
    "Karine", "Olivier", "Amélie", "Thi Lan", "Gabriel", "Chloé", "David", "Sarah", "Ahmed",
    "Julie", "Marc-André", "Émilie", "Samuel", "Linda", "Wei", "Ana", "Patrick", "Josée",
]  # fmt: skip
LAST = [
    "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin",
    "Gagné", "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Nguyen",
    "Haddad", "Smith", "Benali", "Paquette", "St-Pierre", "Girard", "Simard", "Boucher",
]  # fmt: skip
STREETS = ["rue Principale", "boulevard Saint-Laurent", "avenue du Parc", "rue King Ouest",
           "chemin Sainte-Foy", "rue Wellington", "boulevard des Forges"]  # fmt: skip
CITIES = ["Montréal QC H2X", "Québec QC G1R", "Sherbrooke QC J1H", "Gatineau QC J8X",
          "Trois-Rivières QC G9A", "Laval QC H7N", "Longueuil QC J4K"]  # fmt: skip
AREAS = ["514", "438", "450", "418", "819", "581", "873"]
OPENINGS_FR = [
    "Bonjour,\n\nJe vous écris au sujet de mon dossier {file}. ",
    "Madame, Monsieur,\n\nJe porte plainte concernant le traitement de ma demande {file}. ",
    "Bonjour,\n\nJe vous écris au nom de ma mère, dont le dossier porte le numéro {file}. ",
    "Bonsoir,\n\nC'est la {nth} fois que je vous écris pour la demande {file}. ",
]
OPENINGS_EN = [
    "Hello,\n\nI am writing about my request {file}, filed on {date}. ",
    "To whom it may concern,\n\nI wish to complain about how file {file} was handled. ",
]
SENTENCES_FR = [
    "J'ai déposé ma demande le {date} et je n'ai toujours reçu aucune réponse.",
    "Malgré {count} appels au service à la clientèle, personne n'a pu me dire où en est mon "
    "dossier.",
    "Le délai annoncé était de {weeks} semaines et nous en sommes à plus de {months} mois.",
    "On m'a demandé de renvoyer les mêmes documents une {nth} fois, ce qui est inacceptable.",
    "Au bureau de {city}, l'agente m'a dit que mon dossier était complet depuis le {date}.",
    "J'ai payé {amount} $ de frais le {date} et le reçu n'a jamais été pris en compte.",
    "Ma carte expire le {date} et je ne peux pas prendre rendez-vous chez mon médecin sans elle.",
    "J'ai attendu {minutes} minutes au téléphone avant que la ligne ne coupe.",
    "La lettre reçue le {date} parle d'un autre dossier que le mien.",
    "Je suis aidant naturel et je ne peux pas me déplacer au bureau de {city} chaque semaine.",
    "Je demande qu'une personne responsable me rappelle d'ici le {date}.",
]
SENTENCES_EN = [
    "I called {count} times and nobody could tell me where my file stands.",
    "The agent I spoke to on {date} was rude and refused to transfer me to a supervisor.",
    "I was told it would take {weeks} weeks; it has now been {months} months.",
    "I paid a fee of ${amount} on {date} and it does not show on my account.",
    "The office in {city} says the documents were received, the phone line says they were not.",
    "I waited on hold for {minutes} minutes before the call dropped.",
    "My card expires on {date} and my doctor will not see me without it.",
    "The letter I received on {date} is about somebody else's file, not mine.",
    "I was asked for the same documents a {nth_en} time, which I find unacceptable.",
    "I look after my father and cannot travel to the {city} office every week.",
    "I would like a manager to call me back before {date}.",
]


def _fill(chooser: random.Random, template: str, person: dict[str, str]) -> str:
    return template.format(
        file=person["file"],
        date=f"{chooser.randint(1, 28)}/{chooser.randint(1, 12):02d}/2026",
        count=chooser.randint(3, 14),
        weeks=chooser.randint(3, 8),
        months=chooser.randint(2, 9),
        nth=chooser.choice(["deuxième", "troisième", "quatrième"]),
        nth_en=chooser.choice(["second", "third", "fourth"]),
        city=chooser.choice(CITIES).split(" QC")[0],
        amount=f"{chooser.randint(15, 480)},{chooser.randint(0, 99):02d}",
        minutes=chooser.randint(35, 190),
    )


def _person(chooser: random.Random, tag: str, number: int) -> dict[str, str]:
    first, last = chooser.choice(FIRST), chooser.choice(LAST)
    local = f"{first}.{last}".lower().replace(" ", "").replace("é", "e").replace("è", "e")
    return {
        "name": f"{first} {last}",
        "email": f"{local}.{tag}{number}@example.org",
        "phone": f"{chooser.choice(AREAS)} {chooser.randint(200, 999)} "
        f"{chooser.randint(0, 9999):04d}",
        "file": f"{chooser.choice('ABCDEFGH')}-{chooser.randint(100000, 999999)}",
        "address": f"{chooser.randint(10, 9999)} {chooser.choice(STREETS)}\n"
        f"{chooser.choice(CITIES)} {chooser.randint(1, 9)}A{chooser.randint(1, 9)}",
    }


def complaint_text(chooser: random.Random, person: dict[str, str]) -> str:
    """One person's complaint in French (four in five) or English, 900-1,500 characters."""
    english = chooser.random() < 0.2
    openings, sentences = (OPENINGS_EN, SENTENCES_EN) if english else (OPENINGS_FR, SENTENCES_FR)
    parts = [_fill(chooser, chooser.choice(openings), person)]
    target = chooser.randint(900, 1500)
    for template in chooser.sample(sentences, len(sentences)) * 2:
        if sum(map(len, parts)) >= target:
            break
        parts.append(_fill(chooser, template, person) + " ")
    closing = "Thank you" if english else "Merci de votre attention"
    parts.append(f"\n\n{closing},\n{person['name']}\n{person['address']}\n{person['phone']}")
    return "".join(parts)


def submissions(count: int, tag: str, seed: int = 21) -> list[bytes]:
    """``count`` JSON bodies of the web form, each from a different person (``tag`` in their
    email addresses: use one tag per run)."""
    chooser = random.Random(f"{seed}-{tag}")
    bodies = []
    for number in range(count):
        person = _person(chooser, tag, number)
        fields = {
            "name": person["name"],
            "email": person["email"],
            "phone": person["phone"],
            "kind": "complaint",
            "body": complaint_text(chooser, person),
        }
        bodies.append(json.dumps(fields, ensure_ascii=False).encode())
    return bodies


FORM_LETTER = (
    "Madame, Monsieur,\n\nJe soussigné(e) {name}, titulaire du dossier {file}, demeurant au "
    "{street}, joins ma voix à celle des membres de l'Association des usagers pour dénoncer les "
    "délais de traitement des demandes de remboursement des frais de transport pour soins. "
    "Depuis la réforme du printemps, les demandes restent sans réponse pendant plus de quatre "
    "mois, alors que le délai annoncé est de trente jours. Les personnes qui doivent se rendre "
    "à leurs traitements de dialyse ou de radiothérapie avancent des sommes qu'elles n'ont pas. "
    "Je demande que ma demande soit traitée sans délai, que le délai de trente jours soit "
    "respecté pour toutes les personnes concernées, et qu'une réponse écrite me parvienne. "
    "Vous pouvez me joindre au {phone}.\n\nVeuillez agréer mes salutations distinguées,\n"
    "{name}\n{address}"
)


def form_letters(count: int, tag: str, seed: int = 21) -> list[bytes]:
    """``count`` JSON bodies of one campaign's letter, each signed with another person's own
    details (``tag`` in their email addresses: use one tag per run)."""
    chooser = random.Random(f"{seed}-{tag}-letters")
    bodies = []
    for number in range(count):
        person = _person(chooser, tag, number)
        text = FORM_LETTER.format(street=person["address"].split("\n")[0], **person)
        fields = {
            "name": person["name"],
            "email": person["email"],
            "phone": person["phone"],
            "kind": "complaint",
            "body": text,
        }
        bodies.append(json.dumps(fields, ensure_ascii=False).encode())
    return bodies
