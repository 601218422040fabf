"""Staff record anonymous counselling contacts: ``/staff/contacts`` (German, phone first).

- ``GET /staff/contacts/new``: one form of big tap targets (390x844 phone or the van's
  laptop). Everything but the topics and the age group has a default (kind Beratung,
  the municipality of the van's current or last stop, 15–30 minutes, first contact,
  no referral, outcome "Anliegen geklärt", 1 person), so a typical contact takes 3 to 5
  taps. Plain HTML form; ``contacts.js`` only adds conveniences (a ticked partner sets
  the outcome to "vermittelt" while the outcome is still the default).
- ``POST /staff/contacts/new``: checked by :func:`telemetry.contacts.validate` (the same
  check as the hub's decoder); refused input is shown as one clear line (status 400)
  with the choices kept, and nothing is stored. Saved, it redirects to
- ``GET /staff/contacts/``: "Gespeichert" and the list of today's contacts.

On the box a contact is recorded like any event (outbox, sent to the hub exactly once);
on the hub staff pick the van it belongs to and it is stored for that van (a UUIDv8 id:
see telemetry/contacts.py). The form carries the new contact's id, so a second tap on
"Speichern" (or a reload of the post) stores it once. Login and CSRF as on every staff
page (the guard of :mod:`kiosk.staff`).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for

from telemetry import categories, contacts
from telemetry.events import new_checkin_id, new_hub_contact_id
from telemetry.topics import UUID_RE

from . import appctx, staff

bp = Blueprint("staff_contacts", __name__, url_prefix="/staff/contacts")
bp.before_request(staff._guard)

AGE_DE = {
    "under-15": "unter 15", "15-17": "15–17", "18-20": "18–20", "21-24": "21–24",
    "25-27": "25–27", "over-27": "über 27", "unsaid": "keine Angabe",
}  # fmt: skip
TOPICS_DE = {code: staff.LABELS_DE.get(code, code) for code in categories.TOPICS}
DEFAULT_KIND = "beratung"
DEFAULT_DURATION = "15-30"
DEFAULT_OUTCOME = "geklaert"


def _hub() -> bool:
    return appctx.mode() == "hub"


def _vans() -> list[tuple[str, str]]:
    """(id, label) of the vans a contact may belong to on the hub."""
    from .staff_plan import _vans as plan_vans

    return plan_vans()


def _van() -> str:
    """The van of this request: the box's own; on the hub the one chosen (form or
    ``?van=``), else the first known. 404 for a van the hub does not know."""
    if not _hub():
        return appctx.store().van
    vans = [v for v, _ in _vans()]
    van = request.values.get("van") or (vans[0] if vans else "")
    if van not in vans:
        abort(404, "Diesen Bus gibt es nicht.")
    return van


def _last_municipality(van: str, codes: contacts.Codes) -> str | None:
    """The municipality of the van's current or last stop visit, if it is one of the
    configured municipalities."""
    row = (
        appctx.store()
        .reader()
        .execute(
            "SELECT municipality FROM stop_visits WHERE van = ? ORDER BY arrived DESC LIMIT 1",
            (van,),
        )
        .fetchone()
    )
    return row[0] if row and row[0] in codes.municipalities else None


def _defaults(van: str, codes: contacts.Codes) -> dict[str, Any]:
    kinds = list(codes.kinds)
    outcomes = list(codes.outcomes)
    return {
        "kind": DEFAULT_KIND if DEFAULT_KIND in codes.kinds else kinds[0],
        "topics": [],
        "duration": DEFAULT_DURATION,
        "age_group": None,
        "municipality": _last_municipality(van, codes),
        "first_contact": True,
        "persons": 1,
        "referrals": [],
        "outcome": DEFAULT_OUTCOME if DEFAULT_OUTCOME in codes.outcomes else outcomes[0],
    }


def _new_id() -> str:
    return new_hub_contact_id() if _hub() else new_checkin_id()


def _form_id() -> str:
    """The id the form was made with (a second post of the same form is the same
    contact), or 400 if it is no id this side makes."""
    cid = request.form.get("cid", "")
    version = "8" if _hub() else "4"
    if not UUID_RE.match(cid) or cid[14] != version:
        abort(400, "Das Formular ist veraltet. Bitte die Seite neu laden.")
    return cid


def _render_form(van: str, chosen: dict[str, Any], error: str = "", status: int = 200):
    codes = contacts.current()
    page = render_template(
        "staff/contacts_new.html",
        page="contacts",
        van=van if _hub() else None,
        vans=_vans() if _hub() else [],
        codes=codes,
        topics=TOPICS_DE,
        ages=AGE_DE,
        durations=contacts.DURATIONS,
        partners=[(c, codes.partners[c]) for c in codes.active_partners],
        chosen=chosen,
        cid=request.form.get("cid") if error else _new_id(),
        error=error,
        persons_max=contacts.PERSONS_MAX,
        default_outcome=_defaults(van, codes)["outcome"],
    )
    return page, status


@bp.get("/new")
def new():
    van = _van()
    return _render_form(van, _defaults(van, contacts.current()))


@bp.post("/new")
def save():
    van = _van()
    cid = _form_id()
    raw = contacts.form_fields(request.form)
    try:
        fields = contacts.validate(raw, where="form", new=True)
    except contacts.ContactError as e:
        return _render_form(van, raw, e.german, 400)
    store = appctx.store()
    known = store.reader().execute("SELECT 1 FROM contacts WHERE id = ?", (cid,)).fetchone()
    if not known:
        ev = contacts.new_contact(fields, appctx.now(), van=van, id=cid)
        if _hub():
            store.ingest_many([ev])  # the hub's own: no outbox, never sent anywhere
        else:
            appctx.record(ev)
    return redirect(url_for(".today", saved=1, **({"van": van} if _hub() else {})), 303)


@bp.get("/")
def today():
    van = _van()
    codes = contacts.current()
    store = appctx.store()
    day = store.day_of(appctx.now())
    rows = (
        store.reader()
        .execute(
            "SELECT hour, kind, topics, duration, age_group, municipality, first_contact,"
            " persons, referrals, outcome FROM contacts WHERE van = ? AND day = ?"
            " ORDER BY ts DESC, rowid DESC",
            (van, day),
        )
        .fetchall()
    )
    items = [
        {
            "hour": f"{r[0]:02d}:00",
            "kind": codes.kinds.get(r[1], r[1]),
            "topics": ", ".join(TOPICS_DE.get(t, t) for t in json.loads(r[2])),
            "duration": contacts.DURATIONS.get(r[3], r[3]),
            "age": AGE_DE.get(r[4], r[4]),
            "municipality": "außerhalb" if r[5] == contacts.OUTSIDE else r[5],
            "first": bool(r[6]),
            "persons": r[7],
            "referrals": ", ".join(codes.partners.get(p, p) for p in json.loads(r[8])),
            "outcome": codes.outcomes.get(r[9], r[9]),
        }
        for r in rows
    ]
    return render_template(
        "staff/contacts_list.html",
        page="contacts",
        van=van if _hub() else None,
        van_label=dict(_vans()).get(van, van) if _hub() else None,
        items=items,
        persons=sum(i["persons"] for i in items),
        saved=request.args.get("saved") == "1",
        day=day,
    )


def init_app(app: Flask) -> None:
    contacts.configure(app.extensions["vanbox_config"])
    app.register_blueprint(bp)
