"""Anonymous counselling contacts: the codes, the one validation, and the event kind.

Staff record what the counsellors do (kiosk/staff_contacts.py): the kind of contact, its
topics (the check-in's codes), a duration band, the age group, the municipality the young
person lives in (or ``outside``), first or repeat contact, how many people it reached
(a group offer counts each person), referrals to partner agencies and the outcome.
Codes only: no name, no free text, no place of a home visit; the time is rounded down
to the full hour and the id is random.

- Kinds, partners and outcomes come from the config (``[contacts]``, checked in
  telemetry/config_funders.py); duration bands are fixed here (:data:`DURATIONS`).
  A partner with ``active = false`` is kept for old records but not offered any more.
- :func:`validate` is the one check of a contact's fields, used by the staff form and by
  the hub's decoder of the ``contact`` topic alike. Bad input raises
  :class:`ContactError` (a :class:`PayloadError`) naming the field, in English (the
  hub's dead letters) and German (the form), and nothing is stored.
- The codes a process checks against are set once at start by :func:`configure` (the
  web app does it in ``create_app``, so the hub's ingest in the same process uses the
  same lists); until then, the built-in defaults.
- A contact recorded on the hub (for a van) gets a UUIDv8 id, a box's a UUIDv4: the
  reconciliation tally counts only a box's contacts (``tally`` below), so one the hub
  recorded can never hide one the hub is missing from that van.

Payload (``<prefix>/<van>/contact``, QoS 1)::

    {"id":"…","tst":1764400000,"kind":"beratung","topics":["job"],"duration":"15-30",
     "age_group":"18-20","municipality":"Ilsede","first_contact":true,"persons":1,
     "referrals":["jobcenter"],"outcome":"vermittelt"}
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import categories, kinds, topics
from .errors import PayloadError
from .events import Contact, from_epoch, to_epoch

DURATIONS: dict[str, str] = {
    "lt15": "unter 15 Min.",
    "15-30": "15–30 Min.",
    "30-60": "30–60 Min.",
    "gt60": "über 60 Min.",
}
OUTSIDE = "outside"  # lives outside the configured municipalities
PERSONS_MAX = 50
FIELDS = (
    "kind", "topics", "duration", "age_group", "municipality", "first_contact", "persons",
    "referrals", "outcome",
)  # fmt: skip


class ContactError(PayloadError):
    """A contact's field is missing or not allowed. ``field`` names it; ``german`` is the
    message for the staff form."""

    def __init__(self, where: str, field: str, english: str, german: str) -> None:
        super().__init__(f"{where}: {field!r} {english}")
        self.field = field
        self.german = german


@dataclass(frozen=True)
class Codes:
    """The code lists a contact is checked against, with their German labels."""

    kinds: dict[str, str]
    partners: dict[str, str]  # every partner, retired ones too (old records)
    active_partners: tuple[str, ...]  # offered in the form
    outcomes: dict[str, str]
    municipalities: tuple[str, ...]

    @property
    def places(self) -> tuple[str, ...]:
        return (*self.municipalities, OUTSIDE)


def codes_of(cfg: Any) -> Codes:
    """The codes of a validated :class:`telemetry.config.Config`."""
    c = cfg.contacts
    return Codes(
        kinds={k["code"]: k["label"] for k in c["kinds"]},
        partners={p["code"]: p["label"] for p in c["partners"]},
        active_partners=tuple(p["code"] for p in c["partners"] if p["active"]),
        outcomes={o["code"]: o["label"] for o in c["outcomes"]},
        municipalities=tuple(cfg.reports["municipalities"]),
    )


_codes: Codes | None = None


def configure(cfg: Any) -> Codes:
    """Check contacts of this process against ``cfg``'s lists from now on."""
    global _codes
    _codes = codes_of(cfg)
    return _codes


def current() -> Codes:
    global _codes
    if _codes is None:
        from .config import default_config

        _codes = codes_of(default_config())
    return _codes


# --- the one validation ---------------------------------------------------------------


def _one(d: Mapping[str, Any], key: str, allowed, where: str, de: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or v not in allowed:
        shown = repr(v)[:40]
        raise ContactError(
            where, key, f"= {shown} is not one of {', '.join(allowed)}", f"{de}: bitte auswählen."
        )
    return v


def _many(
    d: Mapping[str, Any], key: str, allowed, where: str, de: str, *, least: int
) -> tuple[str, ...]:
    v = d.get(key, [])
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ContactError(where, key, "must be a list of codes", f"{de}: ungültige Auswahl.")
    unknown = [x for x in v if x not in allowed]
    if unknown:
        raise ContactError(
            where,
            key,
            f"holds {unknown[0][:40]!r}, not one of {', '.join(allowed)}",
            f"{de}: „{unknown[0][:40]}“ ist nicht in der Liste.",
        )
    if len(set(v)) != len(v):
        raise ContactError(where, key, "names a code twice", f"{de}: doppelt gewählt.")
    if len(v) < least:
        raise ContactError(
            where, key, f"needs at least {least} code(s)", f"{de}: bitte mindestens eins wählen."
        )
    return tuple(v)


def validate(
    d: Mapping[str, Any], codes: Codes | None = None, *, where: str = "contact", new: bool = False
) -> dict[str, Any]:
    """The checked fields of a contact (:data:`FIELDS`) from ``d`` (a decoded payload, or
    the staff form turned into the same types by :func:`form_fields`). ``new``: a contact
    being recorded now, which may only refer to active partners (a received one may name
    a retired partner: it was active when recorded). Raises :class:`ContactError`."""
    codes = codes or current()
    persons = d.get("persons", 1)
    if isinstance(persons, bool) or not isinstance(persons, int) or not 1 <= persons <= PERSONS_MAX:
        raise ContactError(
            where,
            "persons",
            f"= {str(persons)[:20]} is out of range [1, {PERSONS_MAX}]",
            f"Personen: bitte eine Zahl von 1 bis {PERSONS_MAX}.",
        )
    first = d.get("first_contact")
    if not isinstance(first, bool):
        raise ContactError(
            where, "first_contact", "must be true or false", "Erstkontakt: bitte ja oder nein."
        )
    partners = codes.active_partners if new else tuple(codes.partners)
    return {
        "kind": _one(d, "kind", tuple(codes.kinds), where, "Art"),
        "topics": _many(d, "topics", categories.TOPICS, where, "Themen", least=1),
        "duration": _one(d, "duration", tuple(DURATIONS), where, "Dauer"),
        "age_group": _one(d, "age_group", categories.AGE_GROUPS, where, "Alter"),
        "municipality": _one(d, "municipality", codes.places, where, "Wohnort"),
        "first_contact": first,
        "persons": persons,
        "referrals": _many(d, "referrals", partners, where, "Vermittlung", least=0),
        "outcome": _one(d, "outcome", tuple(codes.outcomes), where, "Ergebnis"),
    }


def form_fields(form: Any) -> dict[str, Any]:
    """A staff form (a werkzeug ``MultiDict``) as the types :func:`validate` takes: lists
    for the multiple choices, a bool for first contact, an int for persons."""
    out: dict[str, Any] = {k: form.get(k) for k in ("kind", "duration", "age_group",
                                                     "municipality", "outcome")}  # fmt: skip
    out["topics"] = form.getlist("topics")
    out["referrals"] = form.getlist("referrals")
    first = form.get("first_contact")
    out["first_contact"] = {"1": True, "0": False}.get(first, first)
    raw = (form.get("persons") or "1").strip()
    out["persons"] = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 3 else raw
    return out


def new_contact(
    fields: Mapping[str, Any], time: datetime, *, van: str = "", id: str | None = None
) -> Contact:
    """A :class:`Contact` of checked ``fields`` (time rounded down to the hour)."""
    extra = {"id": id} if id else {}
    return Contact(time=time, van=van, **fields, **extra)


# --- wire format and table ------------------------------------------------------------


def payload(ev: Contact) -> dict[str, Any]:
    return {
        "id": ev.id,
        "tst": int(to_epoch(ev.time)),
        "kind": ev.kind,
        "topics": list(ev.topics),
        "duration": ev.duration,
        "age_group": ev.age_group,
        "municipality": ev.municipality,
        "first_contact": ev.first_contact,
        "persons": ev.persons,
        "referrals": list(ev.referrals),
        "outcome": ev.outcome,
    }


def decode(d: dict[str, Any], van: str, where: str, now: float) -> Contact:
    """The hub's boundary for a ``contact`` payload (after topics' size, depth and string
    checks): every field by :func:`validate`, the time on a full hour."""
    extra = set(d) - {"id", "tst", *FIELDS}
    if extra:
        raise PayloadError(f"{where}: unknown field {sorted(extra)[0][:40]!r}")
    t = topics._time(d, "tst", now, where=where)
    if t.minute or t.second or t.microsecond:
        raise PayloadError(f"{where}: 'tst' must be on a full hour")
    return Contact(time=t, van=van, id=topics._id(d, where), **validate(d, where=where))


COLUMNS = ("id", "van", "ts", "day", "hour", *FIELDS)


def _values(ev: Contact, rec: kinds.Recorder) -> tuple[Any, ...]:
    loc = rec.local(ev.time)
    return (
        ev.id, ev.van, to_epoch(ev.time), loc.date().isoformat(), loc.hour, ev.kind,
        json.dumps(list(ev.topics)), ev.duration, ev.age_group, ev.municipality,
        int(ev.first_contact), ev.persons, json.dumps(list(ev.referrals)), ev.outcome,
    )  # fmt: skip


def _from_row(r: kinds.Row) -> Contact:
    eid, van, ts, _day, _hour, kind, tps, dur, age, muni, first, persons, refs, outcome = r
    return Contact(
        from_epoch(ts), kind, tuple(json.loads(tps)), dur, age, muni, bool(first),
        tuple(json.loads(refs)), outcome, persons, id=eid, van=van,
    )  # fmt: skip


def _encode(ev: Contact, conn: sqlite3.Connection, rec: kinds.Recorder) -> dict[str, Any]:
    return payload(ev)


# A box's contacts only (UUIDv4; the hub's own are UUIDv8): see the module docstring.
BOX_MADE = "substr(id, 15, 1) != '8'"

CONTACT = kinds.register(
    kinds.EventKind(
        name="contact",
        event=Contact,
        topic="contact",
        priority=0,
        table="contacts",
        columns=COLUMNS,
        values=_values,
        from_row=_from_row,
        encode=_encode,
        decode=decode,
        tally={"contact": BOX_MADE},
    )
)
