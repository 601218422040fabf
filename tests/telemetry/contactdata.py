"""Counselling contacts for a generated year (:mod:`yeardata`): seeded, with referrals,
group offers and contacts of young people from outside the Landkreis.

``generate_contacts(year, n=None, seed=...)`` returns :class:`TruthContact` s (the
ground truth); ``insert_contacts(store, contacts)`` writes them into the ``contacts``
table (migration 0011) in one transaction, the rows exactly as the contract says.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

KINDS = ("kurz", "beratung", "begleitung", "hausbesuch", "gruppe", "online", "telefon")
KIND_WEIGHTS = (30, 30, 8, 6, 6, 10, 10)
PARTNERS = (
    "jobcenter", "jba", "jugendamt", "schuldnerberatung", "migrationsberatung",
    "suchtberatung", "schule",
)  # fmt: skip
OUTCOMES = ("geklaert", "folgetermin", "vermittelt", "offen")
DURATIONS = ("lt15", "15-30", "30-60", "gt60")
AGES = ("under-15", "15-17", "18-20", "21-24", "25-27", "over-27", "unsaid")
TOPICS = ("school", "training", "job", "money", "housing", "family", "health", "papers", "talk")
MUNIS = ("Peine", "Edemissen", "Hohenhameln", "Ilsede", "Lengede", "Vechelde", "Wendeburg")


@dataclass(frozen=True)
class TruthContact:
    id: str
    van: str
    ts: float  # rounded down to the hour
    day: str
    hour: int
    kind: str
    topics: tuple[str, ...]
    duration: str
    age_group: str
    municipality: str
    first_contact: bool
    persons: int
    referrals: tuple[str, ...]
    outcome: str


def generate_contacts(
    visits, tz, *, van: str = "jungregio-1", seed: int = 1, per_visit: float = 2.0
) -> list[TruthContact]:
    """Contacts during the given truth visits (``yeardata.TruthVisit``), about
    ``per_visit`` each, plus a few online/phone ones between visits."""
    rng = random.Random(f"contacts-{seed}-{van}")
    out: list[TruthContact] = []
    for v in visits:
        k = int(rng.random() * 2 * per_visit + 0.5)
        for _ in range(k):
            t = v.arrived + rng.uniform(0, max(60.0, (v.left or v.arrived + 3600) - v.arrived))
            kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
            muni = v.municipality if rng.random() < 0.8 else rng.choice(MUNIS + ("outside",))
            out.append(_contact(rng, van, t, tz, kind, muni))
    return out


def _contact(rng: random.Random, van: str, t: float, tz, kind: str, muni: str) -> TruthContact:
    t = t - t % 3600
    loc = datetime.fromtimestamp(t, UTC).astimezone(tz)
    refs = tuple(rng.sample(PARTNERS, rng.choice((0, 0, 0, 1, 1, 2))))
    return TruthContact(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        van=van,
        ts=t,
        day=loc.date().isoformat(),
        hour=loc.hour,
        kind=kind,
        topics=tuple(rng.sample(TOPICS, rng.randint(1, 3))),
        duration=rng.choice(DURATIONS),
        age_group=rng.choices(AGES, weights=(3, 25, 30, 25, 12, 3, 5))[0],
        municipality=muni,
        first_contact=rng.random() < 0.4,
        persons=rng.randint(3, 12) if kind == "gruppe" else 1,
        referrals=refs,
        outcome="vermittelt" if refs else rng.choice(OUTCOMES),
    )


def insert_contacts(store, contacts: list[TruthContact]) -> None:
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO contacts (id, van, ts, day, hour, kind, topics, duration, age_group,"
            " municipality, first_contact, persons, referrals, outcome)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (c.id, c.van, c.ts, c.day, c.hour, c.kind, json.dumps(list(c.topics)),
                 c.duration, c.age_group, c.municipality, int(c.first_contact), c.persons,
                 json.dumps(list(c.referrals)), c.outcome)
                for c in contacts
            ],
        )  # fmt: skip
