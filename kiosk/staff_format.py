"""How the staff area writes things: German labels for what :mod:`telemetry.reports`
writes in English, and German numbers, dates and period titles. The pages and the
exports (:func:`table_de`) speak German; the figures stay as the reports make them."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from numbers import Real

WEEKDAYS_DE = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
MONTHS_DE = (
    "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
    "Oktober", "November", "Dezember",
)  # fmt: skip


# --- German labels for what telemetry.reports writes in English ---------------------------
# The pages and the exports (table_de) speak German; the figures stay as the reports make them.

TITLES_DE = {
    "summary": "Überblick",
    "stops": "Besuche je Haltestelle",
    "municipalities": "Besuche je Gemeinde",
    "rural": "Stadt und ländliche Gemeinden",
    "hours": "Besuche nach Tageszeit",
    "weekdays": "Besuche nach Wochentag",
    "topics": "Themen",
    "age_groups": "Altersgruppen",
    "first_visits": "Erstbesuche",
    "quality": "Datenqualität",
}
LABELS_DE = {
    # columns
    "Figure": "Kennzahl", "Value": "Wert", "Stop": "Haltestelle", "Municipality": "Gemeinde",
    "Planned": "Geplant", "Visits": "Halte", "Visitors": "Besuche", "Check-ins": "Check-ins",
    "First visits": "Erstbesuche", "Share of visitors (%)": "Anteil Besuche (%)",
    "Area": "Gebiet", "Hour": "Uhrzeit", "Weekday": "Wochentag", "Stop visits": "Halte",
    "Topic": "Thema", "Age group": "Altersgruppe", "Answer": "Antwort",
    "Share of check-ins (%)": "Anteil Check-ins (%)", "Day": "Tag",
    "Without GPS fix (min)": "Ohne GPS-Fix (min)", "Offline (min)": "Offline (min)",
    "Sensor blocked (min)": "Sensor blockiert (min)", "Blocked periods": "Blockierungen",
    "Counts outside stops": "Zählungen außerhalb von Halten",
    # row labels
    "Returning visitors": "Wiederkehrende Besucher", "Stop visits (tour)": "Halte laut Tourplan",
    "Unplanned stops": "Ungeplante Halte", "Places served": "Angefahrene Orte",
    "Total": "Summe", "yes": "ja", "no": "nein", "(not at a stop)": "(an keinem Halt)",
    "Rural municipalities": "Ländliche Gemeinden",
    "Monday": "Montag", "Tuesday": "Dienstag", "Wednesday": "Mittwoch",
    "Thursday": "Donnerstag", "Friday": "Freitag", "Saturday": "Samstag", "Sunday": "Sonntag",
    "First visit": "Erstbesuch", "Returning": "Wiederkehrend", "Not said": "keine Angabe",
    "under 15": "unter 15", "over 27": "über 27",
    # check-in codes (topics, age groups)
    "school": "Schule", "training": "Ausbildung", "job": "Job", "money": "Geld",
    "housing": "Wohnen", "family": "Familie", "health": "Gesundheit",
    "papers": "Aufenthalt, Papiere", "talk": "Einfach reden", "other": "Sonstiges",
    "unsaid": "keine Angabe",
}  # fmt: skip
NOTES_DE = (
    (r"Cells with fewer than (\d+) people are suppressed \(shown as <\d+\)\.",
     r"Zellen mit weniger als \1 Personen sind unterdrückt (angezeigt als <\1)."),
    (r"Counts from 1 to (\d+) are suppressed(?: \(shown as <\d+\))?\.",
     r"Zahlen von 1 bis \1 sind unterdrückt."),
    (r"Check-in times are rounded down to the hour\.",
     "Check-in-Zeiten sind auf die volle Stunde abgerundet."),
    (r"A check-in may name several topics; shares are of all check-ins\.",
     "Ein Check-in kann mehrere Themen nennen; Anteile beziehen sich auf alle Check-ins."),
    (r"Only days with a finding are listed\.", "Nur Tage mit Auffälligkeiten sind aufgeführt."),
    (r"Per stop visit: offline = more than 10 min with no record at all; without GPS fix ="
     r" more than 10 min between fixes, less offline time; sensor blocked = from"
     r" sensor_blocked to sensor_ok\. Counts outside stops are door counts not in any visit\.",
     "Je Halt: offline = mehr als 10 min ohne jede Aufzeichnung; ohne GPS-Fix = mehr als"
     " 10 min zwischen zwei Positionen, abzüglich der Offline-Zeit; Sensor blockiert = von"
     " „sensor_blocked“ bis „sensor_ok“. Zählungen außerhalb von Halten sind Türzählungen"
     " außerhalb jedes Halts (z. B. am Depot)."),
)  # fmt: skip

# Labels that name the district town (cfg.reports["town"]): any town's name.
TOWN_LABELS_DE = (
    (re.compile(r"^Visitors outside the town of (.+)$"), r"Besuche außerhalb der Stadt \1"),
    (re.compile(r"^Share outside the town of (.+) \(%\)$"), r"Anteil außerhalb der Stadt \1 (%)"),
    (re.compile(r"^Town of (.+)$"), r"Stadt \1"),
)


def de(text) -> str:
    """The German label for an English label or code of the reports (else unchanged)."""
    if not isinstance(text, str):
        return text
    if text in LABELS_DE:
        return LABELS_DE[text]
    for pattern, repl in TOWN_LABELS_DE:
        if pattern.match(text):
            return pattern.sub(repl, text)
    return text


def table_de(table):
    """The table as the exports give it to the funders' offices: German column names and
    labels, the same figures."""
    return replace(
        table,
        columns=tuple(de(c) for c in table.columns),
        rows=tuple(tuple(de(v) for v in row) for row in table.rows),
    )


def _de_dates(m: re.Match) -> str:
    return f"Zeitraum: {fmt(m.group(1))} bis {fmt(m.group(2))}."


def de_note(note: str) -> str:
    note = re.sub(r"\S+: (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})\.", _de_dates, note)
    for pattern, repl in NOTES_DE:
        note = re.sub(pattern, repl, note)
    return note


def title_de(table) -> str:
    return TITLES_DE.get(table.name, table.title)


# --- formatting -------------------------------------------------------------------------


def fmt(v, none: str = "–") -> str:
    """A table cell as staff read it: German digit grouping and decimal comma; text
    labels of the reports in German."""
    if v is None:
        return none
    if isinstance(v, bool):
        return "ja" if v else "nein"
    if isinstance(v, int):
        return f"{v:,}".replace(",", ".")
    if isinstance(v, Real):
        s = f"{float(v):,.2f}".rstrip("0").rstrip(".")
        return s.replace(",", " ").replace(".", ",").replace(" ", ".")
    if isinstance(v, datetime):
        return v.strftime("%d.%m.%Y %H:%M")
    if isinstance(v, date):
        return v.strftime("%d.%m.%Y")
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return f"{v[8:]}.{v[5:7]}.{v[:4]}"
    return de(v)


def raw(v) -> str:
    """The exact value for ``data-value`` (machine-readable, as in the CSV)."""
    if v is None:
        return ""
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def period_title(p) -> str:
    if p.kind == "day":
        return f"{WEEKDAYS_DE[p.start.weekday()]}, {p.start.strftime('%d.%m.%Y')}"
    if p.kind == "week":
        y, w, _ = p.start.isocalendar()
        last = p.end - timedelta(days=1)
        return f"KW {w}/{y} ({p.start.strftime('%d.%m.')}–{last.strftime('%d.%m.%Y')})"
    if p.kind == "month":
        return f"{MONTHS_DE[p.start.month - 1]} {p.start.year}"
    return str(p.start.year)
