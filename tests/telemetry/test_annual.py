"""The annual report's figures (telemetry/annual.py) against the ground truth of a generated
half year (2025, January to 2 July, so the year is running: pro rata and "vorläufig")
with the year before it (2024) and counselling contacts with referrals.

Check-ins, contacts, referrals, service days and hours and planned visits are counted
from the generators' truth in plain Python. Visits ("Besuche") are the door sensor's
figure as :mod:`telemetry.reports` counts it (the crew's passes excluded there), so they
are compared with the internal report tables of the same period.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from telemetry import annual_joint, reports
from telemetry.annual import (
    DASH,
    FIGURES,
    MONTHS,
    NOT_AT_STOP,
    OUTSIDE_LABEL,
    UNPLANNED,
    annual,
)  # fmt: skip
from telemetry.config import MUNICIPALITIES, default_config
from telemetry.plan import Plan
from telemetry.store import Store
from telemetry.tour import visits_on

sys.path.insert(0, str(Path(__file__).parent))
import contactdata  # noqa: E402
import yeardata  # noqa: E402

CFG = default_config()
TZ = CFG.tz
VAN = "jungregio-1"
NOW = datetime(2025, 7, 2, 23, 0, tzinfo=TZ)  # the evening of 2 July 2025
AS_OF = date(2025, 7, 2)
FUNDERS = [("Jugendamt", 21493.17), ("Soziales", 15000.0), ("Arbeit", 9506.83)]
BUDGET = 46000.0
MUNIS = list(MUNICIPALITIES)
KINDS = [(k, k.title()) for k in contactdata.KINDS]
PARTNERS = [(p, p.upper()) for p in contactdata.PARTNERS]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    y = yeardata.generate(2025, seed=7, van=VAN, days=(AS_OF - date(2025, 1, 1)).days + 1,
                          drive_interval_s=30, park_interval_s=600)  # fmt: skip
    prev = yeardata.generate(2024, seed=8, van=VAN, drive_interval_s=60, park_interval_s=900)
    store = Store(tmp_path_factory.mktemp("annual") / "box.db", van=VAN, tz=CFG.timezone)
    contacts = contactdata.generate_contacts(y.visits, TZ, van=VAN, seed=7)
    prev_contacts = contactdata.generate_contacts(prev.visits, TZ, van=VAN, seed=8)
    for year in (y, prev):
        yeardata.bulk_insert(store, year)
    contactdata.insert_contacts(store, contacts + prev_contacts)
    yield y, prev, contacts, prev_contacts, store
    store.close()


def make(store, year=2025, now=NOW, public=False, min_cell=3, van=VAN, **kw):
    args = dict(
        now=now, tz=TZ, van=van, town="Peine", municipalities=MUNIS, funders=FUNDERS,
        plans=[Plan.from_tour(VAN, CFG.tour)], kinds=KINDS, partners=PARTNERS,
        public=public, min_cell=min_cell,
    )  # fmt: skip
    args.update(kw)
    return annual(store.reader(), year, **args)


def rows_of(a, name) -> dict:
    return {r[0]: r[1:] for r in a.table(name).rows}


def month(day: str) -> int:
    return int(day[5:7]) - 1


# --- the figures ----------------------------------------------------------------------


def test_counselling_contacts_referrals_and_kinds(data):
    _y, _prev, contacts, _pc, store = data
    a = make(store)
    persons = sum(c.persons for c in contacts)
    assert a.figures["kontakte"] == persons
    assert a.figures["erstkontakte"] == sum(c.persons for c in contacts if c.first_contact)
    refs = Counter(p for c in contacts for p in c.referrals)
    assert a.figures["vermittlungen"] == sum(refs.values())
    assert sum(refs.values()) > 50  # the generated year has referrals to every partner
    by_partner = rows_of(a, "vermittlungen")
    assert {p: by_partner[p.upper()][0] for p, _ in PARTNERS} == {p: refs[p] for p, _ in PARTNERS}
    kinds = rows_of(a, "kontaktarten")
    for k, label in KINDS:
        assert kinds[label][0] == sum(c.persons for c in contacts if c.kind == k), k
        assert kinds[label][1] == sum(
            c.persons for c in contacts if c.kind == k and c.first_contact
        )
    assert kinds["Summe"] == (persons, a.figures["erstkontakte"])
    # a group offer counts each person: more people than records
    assert persons > len(contacts)


def test_places_rural_share_and_outside(data):
    _y, _prev, contacts, _pc, store = data
    a = make(store)
    munis = rows_of(a, "gemeinden")
    by_home = Counter()
    for c in contacts:
        by_home[c.municipality] += c.persons
    for m in MUNIS:
        assert munis[m][3] == by_home[m], m
    assert munis[OUTSIDE_LABEL][3] == by_home["outside"]
    rural = sum(n for m, n in by_home.items() if m not in ("Peine", "outside"))
    total = sum(by_home.values())
    assert a.figures["laendlich_kontakte"] == round(100 * rural / total, 1)
    area = rows_of(a, "laendlich")
    assert area["Stadt Peine"][2] == by_home["Peine"]
    assert area["Ländliche Gemeinden"][2] == rural
    # visits by the municipality of the stop, as the reports count them
    p = reports.period("year", date(2025, 1, 1))
    rep = {r[0]: r for r in reports.report(store.reader(), "municipalities", p, van=VAN).rows}
    for m in MUNIS:
        assert munis[m][1] == rep[m][2] if m in rep else munis[m][1] == 0, m
        assert munis[m][2] == (rep[m][3] if m in rep else 0), m
    vis_town = munis["Peine"][1]
    vis_all = sum(munis[m][1] for m in MUNIS)
    assert a.figures["laendlich_besuche"] == round(100 * (vis_all - vis_town) / vis_all, 1)
    assert a.figures["besuche"] == vis_all
    # town from the caller's data, not a spelling in the code
    b = make(store, town="Edemissen")
    assert rows_of(b, "laendlich")["Stadt Edemissen"][0] == munis["Edemissen"][1]


def test_checkins_ages_and_topics(data):
    y, _prev, contacts, _pc, store = data
    a = make(store)
    assert a.figures["checkins"] == len(y.checkins)
    ages = rows_of(a, "altersgruppen")
    truth = Counter(ci.age for ci in y.checkins)
    truth_c = Counter()
    for c in contacts:
        truth_c[c.age_group] += c.persons
    for age in set(truth) | set(truth_c):
        assert ages[age] == (truth.get(age, 0), truth_c.get(age, 0)), age
    topics = rows_of(a, "themen")
    t_ci = Counter(t for ci in y.checkins for t in ci.topics)
    t_c = Counter()
    for c in contacts:
        for t in c.topics:
            t_c[t] += c.persons
    assert topics == {t: (t_ci.get(t, 0), t_c.get(t, 0)) for t in set(t_ci) | set(t_c)}


def test_months_beside_the_year_before(data):
    y, prev, contacts, prev_contacts, store = data
    a = make(store)
    t = a.table("monate")
    assert t.columns[1:3] == ("Besuche 2025", "Besuche 2024")
    conn = store.reader()
    for m in range(12):
        row = t.rows[m]
        assert row[0] == MONTHS[m]
        ci = sum(1 for c in y.checkins if month(c.day) == m)
        ci0 = sum(1 for c in prev.checkins if month(c.day) == m)
        k = sum(c.persons for c in contacts if month(c.day) == m)
        k0 = sum(c.persons for c in prev_contacts if month(c.day) == m)
        p0 = reports.period("month", date(2024, m + 1, 1))
        v0 = dict(reports.report(conn, "summary", p0, van=VAN).rows)["Visitors"]
        assert row[2::2] == (v0, ci0, k0), MONTHS[m]
        if m > 6:  # August on: still to come in a running year
            assert row[1::2] == (DASH, DASH, DASH)
        else:
            p = reports.period("month", date(2025, m + 1, 1))
            v = dict(reports.report(conn, "summary", p, van=VAN).rows)["Visitors"]
            assert row[1::2] == (v, ci, k), MONTHS[m]
    total = t.rows[12]
    assert total[0] == "Summe" and total[3] == len(y.checkins) and total[4] == len(prev.checkins)


def test_service_days_hours_and_planned_vs_served(data):
    y, _prev, _c, _pc, store = data
    a = make(store)
    served_days = {(v.van, v.day) for v in y.visits}
    assert a.figures["einsatztage"] == len(served_days)
    hours = sum(v.left - v.arrived for v in y.visits) / 3600
    assert a.figures["einsatzstunden"] == pytest.approx(hours, abs=0.1 * 12)
    planned = 0
    for i in range((AS_OF - date(2025, 1, 1)).days + 1):
        d = date(2025, 1, 1) + timedelta(days=i)
        planned += sum(1 for v in visits_on(CFG.tour, d, TZ) if v.start <= NOW)
    assert a.figures["halte_geplant"] == planned
    assert a.figures["halte_bedient"] == sum(1 for v in y.visits if v.planned)
    assert a.figures["halte_ungeplant"] == sum(1 for v in y.visits if not v.planned)
    assert a.figures["quote_bedient"] == round(100 * a.figures["halte_bedient"] / planned, 1)
    assert 85 < a.figures["quote_bedient"] < 100  # about 6 % of visits were dropped
    stops = a.table("haltestellen")
    per_stop = defaultdict(int)
    for v in y.visits:
        if v.planned:
            per_stop[v.name] += 1
    for r in stops.rows[:-1]:
        if r[0] != "ungeplante Halte":
            assert r[3] == per_stop[r[0]], r
    month_rows = a.table("einsatz").rows
    by_month = Counter(month(d) for _, d in served_days)
    assert [r[1] for r in month_rows[:7]] == [by_month[m] for m in range(7)]
    assert all(r[1] == DASH for r in month_rows[7:12])


def test_pro_rata_cost_and_provisional_mark(data):
    _y, _prev, contacts, _pc, store = data
    a = make(store)
    assert a.provisional and a.stand == "Stand 02.07.2025, vorläufig"
    assert a.figures["budget"] == BUDGET
    elapsed = (AS_OF - date(2025, 1, 1)).days + 1  # 183 of 365 days
    assert elapsed == 183
    assert a.figures["budget_anteilig"] == round(BUDGET * 183 / 365, 2)
    persons = sum(c.persons for c in contacts)
    assert a.figures["kosten_je_kontakt"] == round(round(BUDGET * 183 / 365, 2) / persons, 2)
    # just before and just after midnight of 31 December: running, then complete
    end = make(store, now=datetime(2025, 12, 31, 23, 59, tzinfo=TZ))
    assert end.provisional and end.figures["budget_anteilig"] == BUDGET
    done = make(store, now=datetime(2026, 1, 1, 0, 1, tzinfo=TZ))
    assert not done.provisional and done.stand == ""
    assert done.figures["kosten_je_kontakt"] == round(BUDGET / persons, 2)
    first = make(store, now=datetime(2025, 1, 1, 0, 30, tzinfo=TZ))
    assert first.figures["budget_anteilig"] == round(BUDGET / 365, 2)
    # the budget split by funder, and a budget without funders
    split = rows_of(a, "budget")
    assert split["Jugendamt"] == (21493.17, round(100 * 21493.17 / BUDGET, 1))
    assert split["Summe"][0] == BUDGET
    plain = make(store, funders=(), budget_eur=1000.0)
    assert plain.figures["budget"] == 1000.0
    none = make(store, funders=(), budget_eur=0.0)
    assert none.figures["kosten_je_kontakt"] == DASH


def test_a_future_year_and_the_key_figure_table(data):
    store = data[-1]
    a = make(store, year=2026)  # seen from 2 July 2025: nothing yet, nothing spent yet
    assert a.figures["kontakte"] == 0 and a.figures["kosten_je_kontakt"] == DASH
    assert a.provisional and a.figures["budget_anteilig"] == 0.0
    assert all(r[1] == DASH for r in a.table("monate").rows[:12])
    assert [r[0] for r in a.table("kennzahlen").rows] == [label for _, label, _ in FIGURES]
    assert {d[0] for d in a.definitions} >= {"Besuche", "Check-ins", "Beratungskontakte"}


# --- public: small cells hidden across all tables --------------------------------------


def small_store(tmp_path, seed: int = 11, days: int = 9, scale: float = 0.25):
    """A few days: small counts everywhere."""
    y = yeardata.generate(
        2025, seed=seed, van=VAN, days=days, start=date(2025, 3, 3), visitor_scale=scale,
        drive_interval_s=60, park_interval_s=900,
    )  # fmt: skip
    store = Store(tmp_path / "small.db", van=VAN, tz=CFG.timezone)
    yeardata.bulk_insert(store, y)
    contactdata.insert_contacts(
        store, contactdata.generate_contacts(y.visits, TZ, van=VAN, seed=seed, per_visit=0.7)
    )
    return store


PEOPLE = {  # the people-count columns of each table
    "kennzahlen": None, "haltestellen": (5, 6), "gemeinden": (2, 3, 4),
    "monate": (1, 2, 3, 4, 5, 6), "altersgruppen": (1, 2), "themen": (1, 2),
    "kontaktarten": (1, 2), "vermittlungen": (1,), "laendlich": (1, 3),
}  # fmt: skip


def test_public_hides_small_cells_and_no_total_gives_one_away(tmp_path):
    store = small_store(tmp_path)
    try:
        for min_cell in (3, 5):
            full = make(store, now=datetime(2025, 3, 20, tzinfo=TZ))
            pub = make(store, now=datetime(2025, 3, 20, tzinfo=TZ), public=True, min_cell=min_cell)
            hidden = 0
            for t_full, t_pub in zip(full.tables, pub.tables, strict=True):
                cols = PEOPLE.get(t_full.name, ())
                if cols is None:  # the key figures: the people rows
                    cols = (1,)
                    rows = range(5)
                else:
                    rows = range(len(t_full.rows))
                for c in cols:
                    col_hidden = []
                    for i in rows:
                        v, p = t_full.rows[i][c], t_pub.rows[i][c]
                        if isinstance(v, int) and 0 < v < min_cell:
                            assert p is None, (t_full.name, i, c, v)
                        if p is None:
                            col_hidden.append(i)
                            assert isinstance(v, int) and v > 0  # zeros stay visible
                        else:
                            assert p == v
                    hidden += len(col_hidden)
                    # differencing within a column with a total: never exactly one hidden
                    if t_full.rows and t_full.rows[-1][0] == "Summe":
                        assert len(col_hidden) != 1, (t_full.name, c, col_hidden)
            assert hidden > 5  # the data has small cells, or this test proves nothing
            # a municipality's stops: never exactly one hidden among them and its total
            g = {r[0]: (i, r) for i, r in enumerate(pub.table("gemeinden").rows)}
            for m in MUNIS:
                for cg, cs in ((2, 5), (3, 6)):
                    cells = [r[cs] for r in pub.table("haltestellen").rows[:-1] if r[1] == m]
                    cells.append(g[m][1][cg])
                    assert sum(x is None for x in cells) != 1, (m, cg)
            # shares and costs from a hidden count are hidden too
            if pub.table("kennzahlen").rows[2][1] is None:
                assert pub.figures["kosten_je_kontakt"] is None
            assert pub.figures["besuche"] == pub.table("kennzahlen").rows[0][1]
    finally:
        store.close()


def test_hidden_together_with_the_public_year_reports(tmp_path, caplog):
    """A figure the annual and the public year reports both print (a municipality's
    visits, a stop's check-ins, an age group, a topic, the year's totals) is hidden in
    both or in neither: else one would give the other's hidden cell away."""
    store = small_store(tmp_path, seed=3, days=6, scale=0.2)
    try:
        now = datetime(2025, 4, 20, tzinfo=TZ)
        conn = store.reader()
        p = reports.period("year", date(2025, 1, 1))
        pub = reports.public_tables(conn, p, van=VAN)
        theirs = {n: reports.report(conn, n, p, van=VAN) for n in reports.REPORTS}
        full = make(store, now=now)
        pairs = [
            (r.total, r.parts[0])
            for r in annual_joint.links({t.name: t for t in full.tables}, theirs, town="Peine",
                                        labels={}, not_at_stop=NOT_AT_STOP, unplanned=UNPLANNED)
            if len(r.parts) == 1
        ]  # fmt: skip
        assert len(pairs) > 30

        def differing(a) -> list:
            return [
                (m, t) for m, t in pairs
                if (a.table(m[0]).rows[m[1]][m[2]] is None) != (pub[t[0]].rows[t[1]][t[2]] is None)
            ]  # fmt: skip

        with caplog.at_level("WARNING", logger="vanbox.annual"):
            assert differing(make(store, now=now, public=True)) == []
        assert caplog.records == []  # no failure, nothing the reports would need to hide
        # on its own the annual picks other partners: this data shows the difference
        assert differing(make(store, now=now, public=True, joint=False)) != []
    finally:
        store.close()


def test_a_cancellation_months_ago_stays_out_of_the_planned_visits(data, tmp_path):
    """A visit cancelled in January is not "planned and not served", however many changes
    of the plan came after (they used to drop exceptions older than 90 days)."""
    from telemetry.plan import PlanException, change_plan, new_id, save_plan

    _y, _prev, _c, _pc, store = data
    base = Plan.from_tour(VAN, CFG.tour)
    first = base.visits_on(date(2025, 1, 13), TZ)[0]  # a Monday in January
    plans = Store(tmp_path / "plans.db", van=VAN, tz=CFG.timezone)
    try:
        january = PlanException(new_id(), "cancel", date(2025, 1, 13), stop_key=first.stop_key,
                                reason="Krankheit")  # fmt: skip
        save_plan(plans, base.changed(exceptions=(january,), now=NOW.timestamp() - 170 * 86400))
        plan = change_plan(
            plans, VAN, lambda p: p.changed(now=NOW.timestamp()), fallback_tour=CFG.tour
        )  # a change in July
    finally:
        plans.close()
    assert january in plan.exceptions
    full = make(store).figures["halte_geplant"]
    assert make(store, plans=[plan]).figures["halte_geplant"] == full - 1  # January's is out
