"""The three figures of the reports and their one-line definitions (German, as pages and
exports show them to staff and funders).

- **Besuche** (visits): people counted by the door sensor during stop visits, without the
  crew's own passes (:mod:`telemetry.metrics`, ``cfg.reports["crew"]``).
- **Check-ins**: check-ins at the kiosk.
- **Beratungskontakte** (counselling contacts): recorded by staff (``contacts`` table).

They are three distinct figures and never added up.
"""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    "besuche": (
        "Besuche: Personen, die der Türsensor während eines Halts zählt, ohne die Durchgänge"
        " des Teams (je Teammitglied ein Durchgang zu Beginn und einer am Ende des Halts)."
    ),
    "checkins": "Check-ins: Anmeldungen junger Menschen am Tablet (Kiosk) im Fahrzeug.",
    "beratungskontakte": (
        "Beratungskontakte: von den Fachkräften erfasste Beratungen (erreichte Personen);"
        " Erstkontakte sind als erster Kontakt erfasste."
    ),
}
LABELS: dict[str, str] = {
    "besuche": "Besuche",
    "checkins": "Check-ins",
    "beratungskontakte": "Beratungskontakte",
}


def definition_lines(keys: tuple[str, ...] = tuple(DEFINITIONS)) -> list[str]:
    """The definitions of ``keys`` in order, one line each (for a page's or an export's
    notes); an unknown key raises KeyError."""
    return [DEFINITIONS[k] for k in keys]
