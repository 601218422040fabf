"""The annual report for the funders: every figure and table of ``/staff/annual``, its
PDF and its exports, in German (the report is only ever read in German).

:func:`annual` builds an :class:`Annual` for one calendar year and one van (box) or all
vans (``van=None``, the hub). The same code runs on the box and on the hub.

Three figures, three definitions (:data:`DEFINITIONS`, printed on the page, in the PDF
and in the exports):

- **Besuche** (visits): people counted by the door sensor during stop visits, as the
  reports count them (:mod:`telemetry.metrics`: ``visit_visitors``, the crew's own
  passes excluded there).
- **Check-ins**: anonymous check-ins on the van's touchscreen.
- **Beratungskontakte** (counselling contacts): contacts recorded by staff (table
  ``contacts``), the sum of ``persons`` (a group offer counts each person);
  **Erstkontakte** those with ``first_contact = 1``. **Vermittlungen** (referrals): one
  per recorded contact and partner named in it.

Places: visits and check-ins belong to the municipality of the stop (an unplanned stop:
the municipality of the nearest tour stop); counselling contacts to the municipality
where the young person lives (or "außerhalb"). Rural = every municipality but the town
(``cfg.reports["town"]``). Unplanned stops (home visits) are never listed by name, only
per municipality.

Service: *Einsatztage* are the days (per van) with at least one stop visit; *Einsatz-
stunden* the stop visits' durations (an open visit lasts until the van's next visit,
at most 12 h, at most until now). *Halte geplant* are the visits of each van's current
tour plan (exceptions applied, cancelled ones left out) that have started by now;
*bedient* those with a planned stop visit of the same stop on the same day.

Cost per counselling contact: the year's budget (sum of ``cfg.reports["funders"]``, or
``annual_budget_eur``) divided by the counselling contacts. For a year that is not over
yet the budget is taken pro rata, ``budget * elapsed days / days in year`` (the days up
to and including the date of the figures), and the report is marked "Stand <Datum>,
vorläufig".

Privacy: with ``public=True`` every people count from 1 to ``min_cell - 1`` is hidden
(``None``, shown as "<3") and further cells are hidden across all tables of the report
and the public reports of the same year (:mod:`telemetry.annual_joint`,
:mod:`telemetry.annual_privacy`), so that no hidden cell follows from published ones.
Shares and costs computed from a hidden count (or base) are hidden too.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .annual_privacy import Cell, hide
from .definitions import DEFINITIONS as DEFS
from .definitions import LABELS
from .metrics import DEFAULT_CREW, OPEN_VISIT_S, _cur, metrics
from .plan import Plan
from .reports import Table
from .suppression import SuppressionError

log = logging.getLogger("vanbox.annual")

MONTHS = (
    "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
    "Oktober", "November", "Dezember",
)  # fmt: skip
AGE_ORDER = ("under-15", "15-17", "18-20", "21-24", "25-27", "over-27", "unsaid")
OUTSIDE = "outside"
OUTSIDE_LABEL = "außerhalb des Landkreises"
NOT_AT_STOP = "(an keinem Halt)"
UNPLANNED = "ungeplante Halte"
TOTAL = "Summe"
DASH = "–"  # a figure that cannot be computed (no contacts, no budget, a month to come)

DEFINITIONS: tuple[tuple[str, str], ...] = (
    *((LABELS[k], DEFS[k].split(": ", 1)[1]) for k in ("besuche", "checkins", "beratungskontakte")),
    ("Erstkontakte", "Beratungskontakte mit einer Person, die zum ersten Mal beraten wurde."),
    ("Vermittlungen", "Je erfasstem Beratungskontakt und genanntem Partner eine."),
    ("Ländlicher Raum", "Alle Gemeinden außer der Stadt {town}. Besuche und Check-ins"
     " zählen nach der Gemeinde des Halts, Beratungskontakte nach dem Wohnort."),
    ("Einsatztage, Einsatzstunden", "Tage mit mindestens einem Halt je Fahrzeug; Dauer"
     " der Halte vom Ankommen bis zur Abfahrt."),
    ("Halte geplant, bedient", "Halte laut Tourplan (ohne ausgefallene), die bis zum Stand"
     " begonnen haben; bedient, wenn das Fahrzeug am selben Tag an diesem Halt stand."),
    ("Kosten je Beratungskontakt", "Budget geteilt durch die Beratungskontakte; in einem"
     " laufenden Jahr anteilig: Budget × vergangene Tage / Tage des Jahres (vorläufig)."),
)  # fmt: skip


@dataclass(frozen=True)
class Annual:
    year: int
    van: str | None
    as_of: date  # the last day the figures include
    provisional: bool  # the year is not over yet
    figures: Mapping[str, object]  # see FIGURES
    tables: tuple[Table, ...]  # kennzahlen first; all German
    funders: tuple[tuple[str, float], ...]
    town: str
    min_cell: int
    public: bool
    definitions: tuple[tuple[str, str], ...] = field(default=())

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def stand(self) -> str:
        """ "Stand 30.06.2026, vorläufig" for a running year, else ""."""
        return f"Stand {self.as_of:%d.%m.%Y}, vorläufig" if self.provisional else ""


# key, label, unit: the rows of the "Kennzahlen" table, in order
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("besuche", "Besuche", "Personen"),
    ("checkins", "Check-ins", "Personen"),
    ("kontakte", "Beratungskontakte", "Personen"),
    ("erstkontakte", "davon Erstkontakte", "Personen"),
    ("vermittlungen", "Vermittlungen an Partner", "Anzahl"),
    ("einsatztage", "Einsatztage", "Tage"),
    ("einsatzstunden", "Einsatzstunden", "Stunden"),
    ("halte_geplant", "Halte laut Tourplan", "Anzahl"),
    ("halte_bedient", "davon bedient", "Anzahl"),
    ("quote_bedient", "Anteil bedienter Halte", "%"),
    ("halte_ungeplant", "Ungeplante Halte", "Anzahl"),
    ("gemeinden", "Erreichte Gemeinden (Halte)", "Anzahl"),
    ("laendlich_besuche", "Besuche im ländlichen Raum", "%"),
    ("laendlich_kontakte", "Beratungskontakte aus dem ländlichen Raum", "%"),
    ("budget", "Budget des Jahres", "€"),
    ("budget_anteilig", "Budget bis zum Stand (anteilig)", "€"),
    ("kosten_je_kontakt", "Kosten je Beratungskontakt", "€"),
)
PEOPLE_FIGURES = ("besuche", "checkins", "kontakte", "erstkontakte", "vermittlungen")  # hideable


# --- reading --------------------------------------------------------------------------


def _where(year: int, van: str | None, col: str = "day") -> tuple[str, list]:
    sql = f" WHERE {col} >= ? AND {col} < ?"
    args: list = [f"{year}-01-01", f"{year + 1}-01-01"]
    if van is not None:
        sql += " AND van = ?"
        args.append(van)
    return sql, args


@dataclass
class _Year:
    """What one year's tables are made of (counts before any suppression)."""

    visits: list[tuple] = field(default_factory=list)  # id, van, day, name, muni, planned, a, l
    besuche: dict[str, float] = field(default_factory=dict)  # visit id ("" none) -> visitors
    checkins: dict[str, float] = field(default_factory=dict)
    month_besuche: list[float] = field(default_factory=lambda: [0.0] * 12)
    month_checkins: list[float] = field(default_factory=lambda: [0.0] * 12)
    month_kontakte: list[int] = field(default_factory=lambda: [0] * 12)
    ages: dict[str, float] = field(default_factory=dict)
    topics: dict[str, float] = field(default_factory=dict)
    info: dict[str, tuple] = field(default_factory=dict)  # visit id -> (name, muni, planned)


def _read_year(
    conn: sqlite3.Connection, year: int, van: str | None, full: bool, crew: int
) -> _Year:
    y = _Year()
    s, e = date(year, 1, 1), date(year + 1, 1, 1)
    names = ("visit_visitors", "visit_checkins") + (("age", "topic") if full else ())
    rows = metrics(conn, s, e, van=van, names=names, crew=crew)
    acc: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for metric, _day, _v, key, n in rows:
        acc[metric][key] += n
    y.besuche, y.checkins = dict(acc["visit_visitors"]), dict(acc["visit_checkins"])
    y.ages, y.topics = dict(acc["age"]), dict(acc["topic"])
    w, args = _where(year, van)
    for m, n in _cur(conn).execute(
        "SELECT substr(day, 6, 2), sum(persons) FROM contacts" + w + " GROUP BY 1", args
    ):
        y.month_kontakte[int(m) - 1] += int(n)
    if full:
        y.visits = _cur(conn).execute(
            'SELECT id, van, day, name, municipality, planned, arrived, "left" FROM stop_visits'
            + w + " ORDER BY van, arrived", args,
        ).fetchall()  # fmt: skip
        y.info = {v[0]: (v[3], v[4], bool(v[5])) for v in y.visits}
        missing = [k for k in set(y.besuche) | set(y.checkins) if k and k not in y.info]
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            for r in _cur(conn).execute(
                "SELECT id, name, municipality, planned FROM stop_visits WHERE id IN"
                f" ({','.join('?' * len(chunk))})", chunk,
            ):  # fmt: skip
                y.info[r[0]] = (r[1], r[2], bool(r[3]))
        # visitors of a stop visit no longer known (pruned) belong to no stop: left out
        y.besuche = {k: n for k, n in y.besuche.items() if k in y.info}
    for metric, day, _v, key, n in rows:
        if metric == "visit_visitors" and (not full or key in y.info):
            y.month_besuche[int(day[5:7]) - 1] += n
        elif metric == "visit_checkins":
            y.month_checkins[int(day[5:7]) - 1] += n
    return y


def _codes(text: str, cache: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A stored JSON list of codes (each distinct text parsed once)."""
    if text not in cache:
        try:
            codes = json.loads(text)
        except ValueError:
            codes = []
        cache[text] = tuple(dict.fromkeys(c for c in codes if isinstance(c, str)))
    return cache[text]


def _contacts(conn: sqlite3.Connection, year: int, van: str | None) -> dict[str, dict]:
    """The year's counselling contacts in one pass: persons by kind, first contacts by
    kind, by home municipality, by age group and by topic; referrals by partner."""
    w, args = _where(year, van)
    keys = ("kind", "first", "muni", "age", "topic", "referral")
    out: dict[str, dict] = {k: defaultdict(int) for k in keys}
    cache: dict[str, tuple[str, ...]] = {}
    for kind, muni, age, first, n, topics, refs in _cur(conn).execute(
        "SELECT kind, municipality, age_group, first_contact, persons, topics, referrals"
        " FROM contacts" + w, args,
    ):  # fmt: skip
        out["kind"][kind] += n
        out["muni"][muni] += n
        out["age"][age] += n
        if first:
            out["first"][kind] += n
        for t in _codes(topics, cache):
            out["topic"][t] += n
        for p in _codes(refs, cache):
            out["referral"][p] += 1
    return out


def _service(visits: Sequence[tuple], now_ts: float) -> tuple[dict[int, set], list[float]]:
    """(month -> {(van, day)} served, hours per month) from the year's stop visits."""
    days: dict[int, set] = defaultdict(set)
    hours = [0.0] * 12
    for i, v in enumerate(visits):
        m = int(v[2][5:7]) - 1
        days[m].add((v[1], v[2]))
        nxt = visits[i + 1][6] if i + 1 < len(visits) and visits[i + 1][1] == v[1] else math.inf
        end = v[7] if v[7] is not None else min(v[6] + OPEN_VISIT_S, nxt, now_ts)
        hours[m] += max(0.0, end - v[6]) / 3600.0
    return days, hours


def _planned(
    plans: Iterable[Plan], year: int, now: datetime, tz: ZoneInfo, visits: Sequence[tuple]
) -> tuple[list[int], list[int], dict[tuple[str, str], list[int]]]:
    """Planned (due, not cancelled) and served visits per month, and per (stop, muni)."""
    served_keys = {(v[1], v[2], v[3]) for v in visits if v[5]}
    planned, served = [0] * 12, [0] * 12
    per_stop: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    last = min(date(year, 12, 31), now.astimezone(tz).date())
    for plan in plans:
        if last < date(year, 1, 1):
            break
        for pv in plan.visits_between(date(year, 1, 1), last, tz):
            if pv.cancelled or pv.start > now:
                continue
            m = pv.start.month - 1
            hit = (plan.van, pv.start.date().isoformat(), pv.name) in served_keys
            planned[m] += 1
            served[m] += hit
            per_stop[(pv.name, pv.municipality)][0] += 1
            per_stop[(pv.name, pv.municipality)][1] += hit
    return planned, served, per_stop


# --- the report -------------------------------------------------------------------------


def _i(x: float) -> int:
    return int(round(x))


def _pct(n: float | None, total: float | None) -> float | str:
    if n is None or total is None:
        return DASH
    return round(100.0 * n / total, 1) if total else DASH


def annual(
    conn: sqlite3.Connection,
    year: int,
    *,
    now: datetime,
    tz: ZoneInfo,
    van: str | None = None,
    town: str = "Peine",
    municipalities: Sequence[str] = (),
    funders: Sequence[tuple[str, float]] = (),
    budget_eur: float = 0.0,
    plans: Iterable[Plan] = (),
    kinds: Sequence[tuple[str, str]] = (),
    partners: Sequence[tuple[str, str]] = (),
    labels: Mapping[str, str] | None = None,
    public: bool = True,
    min_cell: int = 3,
    crew: int = DEFAULT_CREW,
    joint: bool = True,
) -> Annual:
    """The annual report of ``year`` as of ``now`` (see the module docstring).

    ``funders`` are (name, euro); when given, the budget is their sum. ``kinds`` and
    ``partners`` are the configured (code, label) of contact kinds and partners (every one
    gets a row); ``labels`` maps topic and age group codes to German labels. ``joint``:
    hide small cells together with the public year reports (:mod:`telemetry.annual_joint`)."""
    from .annual_tables import build

    lab = dict(labels or {})
    today = now.astimezone(tz).date()
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    provisional = today < end  # the year is not over (or has not begun): figures to date
    as_of = min(today, end - timedelta(days=1))
    cur = _read_year(conn, year, van, full=True, crew=crew)
    prev = _read_year(conn, year - 1, van, full=False, crew=crew)
    con = _contacts(conn, year, van)
    days, hours = _service(cur.visits, now.timestamp())
    planned, served, per_stop = _planned(plans, year, now, tz, cur.visits)
    funders = tuple((str(n), float(e)) for n, e in funders)
    budget = round(sum(e for _, e in funders), 2) if funders else float(budget_eur)
    days_in_year = (end - start).days
    elapsed = max(0, (as_of - start).days + 1)
    budget_to_date = round(budget * elapsed / days_in_year, 2) if provisional else budget
    tables, relations, cells, figures = build(
        cur=cur, prev=prev, con=con, days=days, hours=hours, planned=planned, served=served,
        per_stop=per_stop, town=town, municipalities=list(municipalities), labels=lab,
        kinds=tuple(kinds), partners=tuple(partners),
        budget=budget, budget_to_date=budget_to_date, funders=funders, year=year,
        future_from=(as_of.month if as_of >= start else 0) if provisional else 12,
    )  # fmt: skip
    if public:
        counts = None
        if joint:
            from .annual_joint import hide_with_reports

            try:
                counts = hide_with_reports(
                    conn, year, {t.name: t for t in tables}, cells, relations, van=van,
                    town=town, crew=crew, min_cell=min_cell, labels=lab,
                    not_at_stop=NOT_AT_STOP, unplanned=UNPLANNED,
                ).hidden  # fmt: skip
            except SuppressionError:  # the two disagree on a figure: the annual on its own
                log.exception("annual %s: joint suppression with the year's reports failed", year)
        hidden = hide(cells, relations, min_cell, counts)
        tables, figures = _apply(tables, figures, hidden)
    return Annual(
        year=year, van=van, as_of=as_of, provisional=provisional, figures=figures,
        tables=tables, funders=funders, town=town, min_cell=min_cell, public=public,
        definitions=tuple((k, v.format(town=town)) for k, v in DEFINITIONS),
    )  # fmt: skip


def _apply(tables, figures, hidden: set[Cell]):
    """Tables and figures with the hidden cells set to None (shares and costs derived
    from a hidden cell are listed in ``hidden`` by the builder's relations)."""
    out = []
    for t in tables:
        rows = tuple(
            tuple(None if (t.name, i, j) in hidden else v for j, v in enumerate(row))
            for i, row in enumerate(t.rows)
        )
        note = t.note
        if any((t.name, i, j) in hidden for i in range(len(rows)) for j in range(len(t.columns))):
            note = (note + " " if note else "") + "Kleine Zahlen sind unterdrückt."
        out.append(Table(t.name, t.title, t.columns, rows, t.chart, note))
    figs = dict(figures)
    kz = {row[0]: i for i, row in enumerate(tables[0].rows)}
    for key, label, _unit in FIGURES:
        if ("kennzahlen", kz.get(label, -1), 1) in hidden:
            figs[key] = None
    return tuple(out), figs


__all__ = ["Annual", "DEFINITIONS", "FIGURES", "MONTHS", "PEOPLE_FIGURES", "annual"]
