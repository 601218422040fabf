"""Report figures on a generated year, compared with counts made from the generator's own
ground truth (which visit each person and check-in belonged to, the faults it made).

The expected figures below are computed from the truth in plain Python; they never run
the report's SQL or its metric code.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from telemetry import reports
from telemetry.config import TOWN, default_config
from telemetry.geo import distance_m
from telemetry.plan import Plan
from telemetry.reports import Period, period, report
from telemetry.stops import StopDetector
from telemetry.store import Store

sys.path.insert(0, str(Path(__file__).parent))
import yeardata  # noqa: E402

CFG = default_config()
TZ = CFG.tz
VAN1, VAN2 = "jungregio-1", "jungregio-2"


def detect(y: yeardata.Year):
    det = StopDetector(CFG.tour, CFG.stops, TZ, van=y.van)
    return [ev for p in y.positions for ev in det.feed(p)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A hub-like store: van 1 (beam pair) for all of 2025, van 2 (door) for two months."""
    y1 = yeardata.generate(2025, seed=1, van=VAN1)
    y2 = yeardata.generate(2025, seed=2, van=VAN2, sensor="door", days=61, start=date(2025, 3, 1))
    store = Store(tmp_path_factory.mktemp("reports") / "hub.db", van="")
    for y in (y1, y2):
        yeardata.bulk_insert(store, y, visits=detect(y))
    yield {VAN1: y1, VAN2: y2}, store
    store.close()


# --- the truth, counted independently ------------------------------------------------


def in_period(day: str, p: Period) -> bool:
    return p.start.isoformat() <= day < p.end.isoformat()


def detected_name(v: yeardata.TruthVisit) -> str:
    if v.planned:
        return v.name
    lat, lon = next((la, lo) for n, la, lo in yeardata.VILLAGES if n == v.name)
    near = min(CFG.tour, key=lambda s: distance_m(lat, lon, s.lat, s.lon))
    return f"bei {near.name}"


def checkin_visit(y: yeardata.Year, ci: yeardata.TruthCheckIn) -> yeardata.TruthVisit | None:
    """The documented rule: the visit overlapping most of the check-in's (rounded) hour."""
    h0 = datetime.fromtimestamp(ci.ts, UTC).replace(minute=0, second=0, microsecond=0)
    h0 = h0.timestamp()
    best, best_o = None, 0.0
    for v in sorted(y.visits, key=lambda v: v.arrived):
        o = min(v.left, h0 + 3600) - max(v.arrived, h0)
        if o > best_o:
            best, best_o = v, o
    return best


CREW = reports.DEFAULT_CREW  # the staff on board (default config)
_EVENTS: dict[int, tuple[list[float], list[str]]] = {}


def counted(y: yeardata.Year, v: yeardata.TruthVisit, crew: int = CREW) -> list[float]:
    """The times of the sensor events of visit ``v`` that count as a visitor, by the
    documented rule: beam pair: every "in" but the crew's first ones; door: drop the
    crew's first and last passes, then every other pass (1st, 3rd ...)."""
    if id(y) not in _EVENTS:
        ev = sorted((f.time.timestamp(), f.kind) for f in y.footfall if f.kind in ("in", "pass"))
        _EVENTS[id(y)] = ([t for t, _ in ev], [k for _, k in ev])
    ts, kinds = _EVENTS[id(y)]
    lo, hi = bisect_left(ts, v.arrived), bisect_left(ts, v.left)
    ins = [ts[i] for i in range(lo, hi) if kinds[i] == "in"]
    passes = [ts[i] for i in range(lo, hi) if kinds[i] == "pass"]
    return ins[crew:] + passes[crew : max(crew, len(passes) - crew)][::2]


def visitors_of(y: yeardata.Year, v: yeardata.TruthVisit) -> int:
    return len(counted(y, v))


_TIMES: dict[int, tuple[list[float], list[float]]] = {}


def times(y: yeardata.Year) -> tuple[list[float], list[float]]:
    """Sorted times of the year's fixes and footfall events."""
    if id(y) not in _TIMES:
        _TIMES[id(y)] = (
            sorted(q.time.timestamp() for q in y.positions),
            sorted(f.time.timestamp() for f in y.footfall),
        )
    return _TIMES[id(y)]


def expected(datasets, p: Period, vans=(VAN1, VAN2)) -> dict:
    stops = defaultdict(lambda: [0, 0, 0, 0])  # visits, visitors, checkins, first
    meta = {}
    hours_v, hours_c = Counter(), Counter()
    wd_visits, wd_v, wd_c = Counter(), Counter(), Counter()
    topics, ages, first = Counter(), Counter(), Counter()
    quality = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0])
    for van in vans:
        y = datasets[van]
        for v in y.visits:
            if not in_period(v.day, p):
                continue
            name = detected_name(v)
            meta[name] = (v.municipality, v.planned)
            s = stops[name]
            s[0] += 1
            s[1] += visitors_of(y, v)
            wd_visits[date.fromisoformat(v.day).weekday()] += 1
            wd_v[date.fromisoformat(v.day).weekday()] += visitors_of(y, v)
            # quality: gaps over 10 min in the fixes and in all records, inside the visit
            pos, ff = times(y)
            p_in = pos[bisect_left(pos, v.arrived) : bisect_right(pos, v.left)]
            r_in = sorted(p_in + ff[bisect_left(ff, v.arrived) : bisect_right(ff, v.left)])

            def gaps(pts, v=v):
                pts = [v.arrived, *sorted(pts), v.left]
                return sum(b - a for a, b in zip(pts, pts[1:], strict=False) if b - a > 600)

            offline = gaps(r_in)
            quality[v.day][1] += offline
            quality[v.day][0] += gaps(p_in) - offline
            assert offline >= sum(b - a for a, b in v.off_gaps) - 1
            assert gaps(p_in) >= sum(b - a for a, b in v.fix_gaps) - 1
        for v in y.visits:
            if in_period(v.day, p):
                for t in counted(y, v):
                    hours_v[datetime.fromtimestamp(t, TZ).hour] += 1
        for ci in y.checkins:
            if not in_period(ci.day, p):
                continue
            v = checkin_visit(y, ci)
            name = detected_name(v) if v else reports.NOT_AT_STOP
            if v is None:
                meta[name] = ("", False)
            stops[name][2] += 1
            stops[name][3] += ci.first is True
            hours_c[ci.hour] += 1
            wd_c[date.fromisoformat(ci.day).weekday()] += 1
            ages[ci.age] += 1
            first[ci.first] += 1
            for t in ci.topics:
                topics[t] += 1
        for b0, b1, day in y.blocked:
            if in_period(day, p):
                quality[day][2] += b1 - b0
                quality[day][3] += 1
        for day, n in y.outside_counts.items():
            if in_period(day, p):
                quality[day][4] += n
    return {
        "stops": dict(stops),
        "meta": meta,
        "hours_v": hours_v,
        "hours_c": hours_c,
        "wd": (wd_visits, wd_v, wd_c),
        "topics": topics,
        "ages": ages,
        "first": first,
        "quality": {d: q for d, q in quality.items() if any(q)},
    }


PERIODS = [
    period("year", date(2025, 6, 1)),
    period("month", date(2025, 3, 15)),  # daylight saving time starts on 30 March
    period("week", date(2025, 10, 26)),  # and ends on 26 October
    period("day", date(2025, 4, 4)),  # a Friday: two stops, one in the evening
]


def share(n, total):
    return round(100.0 * n / total, 1) if total else None


@pytest.mark.parametrize("p", PERIODS, ids=lambda p: p.label)
def test_every_figure_matches_the_truth(data, p):
    datasets, store = data
    conn = store.reader()
    exp = expected(datasets, p)
    st = exp["stops"]
    visitors = sum(s[1] for s in st.values())
    checkins = sum(s[2] for s in st.values())
    assert visitors > 0 and checkins > 0

    # stops
    t = report(conn, "stops", p)
    rows = {r[0]: r for r in t.rows[:-1]}
    assert set(rows) == set(st)
    for name, (n_vis, n_people, n_ci, n_first) in st.items():
        muni, planned = exp["meta"][name]
        assert rows[name][1:] == (muni, "yes" if planned else "no", n_vis, n_people, n_ci, n_first)
    assert t.rows[-1] == ("Total", "", "", *(sum(s[i] for s in st.values()) for i in range(4)))

    # municipalities and rural
    muni = defaultdict(lambda: [0, 0, 0])
    for name, s in st.items():
        m = exp["meta"][name][0] or reports.NOT_AT_STOP
        for i in range(3):
            muni[m][i] += s[i]
    t = report(conn, "municipalities", p)
    got = {r[0]: r[1:] for r in t.rows[:-1]}
    assert got == {m: (a[0], a[1], a[2], share(a[1], visitors)) for m, a in muni.items()}
    town = muni.get(TOWN, [0, 0, 0])
    rural = [sum(a[i] for m, a in muni.items() if m not in (TOWN, reports.NOT_AT_STOP))
             for i in range(3)]  # fmt: skip
    t = report(conn, "rural", p)
    got = {r[0]: r[1:] for r in t.rows}
    assert got[f"Town of {TOWN}"] == (town[0], town[1], town[2], share(town[1], visitors))
    assert got["Rural municipalities"] == (rural[0], rural[1], rural[2], share(rural[1], visitors))

    # summary
    t = dict(report(conn, "summary", p).rows)
    assert t["Visitors"] == visitors
    assert t["Check-ins"] == checkins
    assert t["First visits"] == exp["first"][True]
    assert t["Returning visitors"] == exp["first"][False]
    assert t["Stop visits (tour)"] == sum(s[0] for n, s in st.items() if exp["meta"][n][1])
    assert t["Unplanned stops"] == sum(
        s[0] for n, s in st.items() if not exp["meta"][n][1] and n != reports.NOT_AT_STOP
    )
    assert t["Places served"] == sum(1 for s in st.values() if s[0])
    assert t["Visitors outside the town of Peine"] == rural[1]
    assert t["Share outside the town of Peine (%)"] == share(rural[1], visitors)

    # hours of day (every hour from the first to the last with anything)
    t = report(conn, "hours", p)
    got = {int(r[0][:2]): r[1:] for r in t.rows}
    hours = set(exp["hours_v"]) | set(exp["hours_c"])
    assert set(got) == set(range(min(hours), max(hours) + 1))
    for h, (nv, nc) in got.items():
        assert (nv, nc) == (exp["hours_v"][h], exp["hours_c"][h]), h

    # weekdays
    t = report(conn, "weekdays", p)
    wv, wp, wc = exp["wd"]
    assert [r[1:] for r in t.rows] == [(wv[i], wp[i], wc[i]) for i in range(7)]
    assert [r[0] for r in t.rows][:2] == ["Monday", "Tuesday"]

    # topics, age groups, first visits: counts and shares of all check-ins
    t = report(conn, "topics", p)
    assert {r[0]: r[1:] for r in t.rows} == {
        k: (n, share(n, checkins)) for k, n in exp["topics"].items()
    }
    assert [r[1] for r in t.rows] == sorted((r[1] for r in t.rows), reverse=True)
    t = report(conn, "age_groups", p)
    assert {r[0]: r[1:] for r in t.rows} == {
        k: (n, share(n, checkins)) for k, n in exp["ages"].items()
    }
    t = report(conn, "first_visits", p)
    labels = {True: "First visit", False: "Returning", None: "Not said"}
    assert {r[0]: r[1:] for r in t.rows} == {
        labels[k]: (n, share(n, checkins)) for k, n in exp["first"].items()
    }

    # data quality, per day with a finding
    t = report(conn, "quality", p)
    got = {r[0]: r[1:] for r in t.rows[:-1]}
    assert set(got) == set(exp["quality"])
    for day, (nofix, off, blocked, n_blocked, outside) in exp["quality"].items():
        g = got[day]
        assert g[0] == pytest.approx(nofix / 60, abs=0.051), day
        assert g[1] == pytest.approx(off / 60, abs=0.051), day
        assert g[2] == pytest.approx(blocked / 60, abs=0.051), day
        assert g[3:] == (n_blocked, outside), day


def test_the_year_has_every_kind_of_finding(data):
    """The generated year is realistic enough to exercise every figure."""
    datasets, store = data
    y = datasets[VAN1]
    assert len(y.visits) > 400 and sum(not v.planned for v in y.visits) >= 20
    assert sum(1 for v in y.visits if v.fix_gaps) >= 5
    assert sum(1 for v in y.visits if v.off_gaps) >= 5
    assert len(y.blocked) >= 5 and sum(y.outside_counts.values()) >= 100
    q = report(store.reader(), "quality", period("year", date(2025, 1, 1))).rows[-1]
    assert q[0] == "Total" and all(x > 0 for x in q[1:])
    # The hour-overlap rule puts almost every check-in where the person really was.
    right = sum(checkin_visit(y, ci).id == ci.visit for ci in y.checkins)
    assert right >= 0.98 * len(y.checkins)


def test_door_sensor_counts_half_the_passes_per_visit(data):
    datasets, store = data
    y = datasets[VAN2]
    p = Period("month", date(2025, 3, 1), date(2025, 5, 1), "Mar-Apr")
    odd = 0
    expect = 0
    for v in y.visits:
        passes = sum(
            1 for f in y.footfall if f.kind == "pass" and v.arrived <= f.time.timestamp() < v.left
        )
        assert math.ceil(passes / 2) == v.visitors
        odd += passes % 2
        expect += math.ceil(max(0, passes - 2 * CREW) / 2)  # the crew's passes are no visits
    assert odd >= 5  # some visits had a missed pass: the ceiling matters
    t = report(store.reader(), "stops", p, van=VAN2)
    assert t.rows[-1][4] == expect < sum(v.visitors for v in y.visits)
    t0 = report(store.reader(), "stops", p, van=VAN2, crew=0)
    assert t0.rows[-1][4] == sum(v.visitors for v in y.visits)


def test_van_filter_and_all_vans(data):
    datasets, store = data
    conn = store.reader()
    assert reports.vans(conn) == [VAN1, VAN2]
    p = period("month", date(2025, 4, 1))
    both = dict(report(conn, "summary", p).rows)
    one = dict(report(conn, "summary", p, van=VAN1).rows)
    two = dict(report(conn, "summary", p, van=VAN2).rows)
    for key in ("Visitors", "Check-ins", "First visits", "Stop visits (tour)"):
        assert both[key] == one[key] + two[key] > 0
    exp2 = expected(datasets, p, vans=(VAN2,))
    assert two["Visitors"] == sum(s[1] for s in exp2["stops"].values())


def test_public_reports_suppress_small_cells(data):
    datasets, store = data
    conn = store.reader()
    people = {
        "stops": (4, 5, 6),
        "municipalities": (2, 3),
        "rural": (2, 3),
        "hours": (1, 2),
        "weekdays": (2, 3),
        "topics": (1,),
        "age_groups": (1,),
        "first_visits": (1,),
    }
    shares = {"municipalities": {4: 2}, "rural": {4: 2}, "topics": {2: 1},
              "age_groups": {2: 1}, "first_visits": {2: 1}}  # fmt: skip
    seen_suppressed = 0
    for p in (period("day", date(2025, 4, 4)), period("week", date(2025, 7, 9))):
        for name, cols in people.items():
            staff = report(conn, name, p)
            pub = report(conn, name, p, public=True)
            assert len(pub.rows) == len(staff.rows) and pub.columns == staff.columns
            body = pub.rows[:-1] if staff.rows and staff.rows[-1][0] == "Total" else pub.rows
            for c in cols:
                cells = [r[c] for r in body]
                hidden = sum(x is None for x in cells)
                seen_suppressed += hidden
                # nothing from 1 to 2 is shown (that no hidden cell can be worked out
                # from the others: test_suppression_audit.py)
                assert all(x is None or x == 0 or x >= 3 for x in cells), (name, c, cells)
            for sc, cc in shares.get(name, {}).items():
                for r in pub.rows:
                    if r[cc] is None:
                        assert r[sc] is None
            # Unsuppressed cells are the staff figures.
            for rs, rp in zip(staff.rows, pub.rows, strict=True):
                assert all(b is None or a == b for a, b in zip(rs, rp, strict=True))
            if any(r != s for r, s in zip(pub.rows, staff.rows, strict=True)):
                assert "suppressed" in pub.note
    assert seen_suppressed > 10


def test_public_tables_cannot_be_differenced(data):
    """A suppressed cell cannot be worked out from another table's total: a
    municipality's stops, the rural municipalities, and every column against the
    summary."""
    _datasets, store = data
    conn = store.reader()
    checked = 0
    for week in range(1, 53, 2):
        p = period("week", date.fromisocalendar(2025, week, 1))
        stops = report(conn, "stops", p, public=True).rows[:-1]
        munis = report(conn, "municipalities", p, public=True).rows[:-1]
        rural = dict((r[0], r) for r in report(conn, "rural", p, public=True).rows)
        summary = dict(report(conn, "summary", p, public=True).rows)
        for col, mcol, rcol in ((4, 2, 2), (5, 3, 3)):
            for m in munis:
                if m[mcol] is None:
                    continue
                hidden = [s for s in stops if s[1] == m[0] and s[col] is None]
                assert len(hidden) != 1, (p.label, m, hidden)
                checked += 1
            rural_total = rural["Rural municipalities"][rcol]
            if rural_total is not None:
                hidden = [m for m in munis if m[0] not in (TOWN, reports.NOT_AT_STOP)
                          and m[mcol] is None]  # fmt: skip
                assert len(hidden) != 1, (p.label, hidden)
            total = summary["Visitors" if col == 4 else "Check-ins"]
            if total is not None:
                assert sum(s[col] is None for s in stops) != 1
                assert sum(m[mcol] is None for m in munis) != 1
    assert checked > 100


def test_annual_report(data):
    datasets, store = data
    conn = store.reader()
    p = period("year", date(2025, 1, 1))
    exp = expected(datasets, p, vans=(VAN1,))
    st = exp["stops"]
    contacts = sum(s[1] for s in st.values())
    rural = sum(s[1] for n, s in st.items() if exp["meta"][n][0] not in (TOWN, ""))
    a = reports.annual(conn, 2025, van=VAN1, budget_eur=180_000.0)
    assert a["contacts"] == contacts
    assert a["first_contacts"] == exp["first"][True]
    assert a["checkins"] == sum(exp["first"].values())
    assert a["stops_served"] == sum(1 for v in datasets[VAN1].visits if v.planned)
    assert a["rural_share"] == round(rural / contacts, 4)
    assert 0.5 < a["rural_share"] < 0.9  # six of the seven municipalities are rural
    assert a["cost_per_contact"] == round(180_000.0 / contacts, 2)
    assert a["topics"].name == "topics" and a["topics"].rows
    assert reports.annual(conn, 2025, van=VAN1)["cost_per_contact"] is None
    empty = reports.annual(conn, 2019, van=VAN1, budget_eur=1000.0)
    assert empty["contacts"] == 0 and empty["rural_share"] is None
    assert empty["cost_per_contact"] is None


def test_today_at_a_glance(tmp_path):
    """Today, late in a visit: the open visit, people in so far, check-ins."""
    y = yeardata.generate(2025, seed=3, van=VAN1, days=1, start=date(2025, 4, 4))
    v = y.visits[0]  # Hohenhameln, Friday afternoon
    now = datetime.fromtimestamp(v.arrived + 0.97 * (v.left - v.arrived), UTC)
    cut = now.timestamp()
    store = Store(tmp_path / "box.db", van=VAN1)
    det = StopDetector(CFG.tour, CFG.stops, TZ, van=VAN1)
    visits = [ev for p in y.positions if p.time <= now for ev in det.feed(p)]
    store.record_many([p for p in y.positions if p.time <= now])
    store.record_many([f for f in y.footfall if f.time <= now])
    store.record_many([c for c in y.checkin_events if c.time <= now])
    store.record_many(visits)
    t = reports.today(store.reader(), now, TZ, van=VAN1, plans=[Plan.from_tour(VAN1, CFG.tour)])
    ins = [f for f in y.footfall if f.kind == "in" and v.arrived <= f.time.timestamp() <= cut]
    assert t["stop"] == v.name and t["planned_stop"] == v.name
    assert t["since"] == datetime.fromtimestamp(v.arrived, TZ)
    assert t["people_in"] == len(ins) - CREW > 0  # the crew's own first passes are no visits
    assert t["checkins"] == sum(1 for c in y.checkin_events if c.time <= now)
    last = [f for f in y.footfall if f.time <= now and f.kind in ("in", "out")][-1]
    assert t["occupancy"] == last.occupancy
    # Through the store's own write path the figures are the same as the bulk path.
    assert (
        dict(report(store.reader(), "summary", period("day", date(2025, 4, 4))).rows)["Visitors"]
        == len(ins) - CREW
    )
    later = reports.today(store.reader(), now + timedelta(days=1), TZ, van=VAN1)
    assert later["stop"] is None and later["people_in"] == 0 and later["checkins"] == 0


def test_periods():
    assert period("day", date(2025, 3, 30)) == Period(
        "day", date(2025, 3, 30), date(2025, 3, 31), "2025-03-30"
    )
    w = period("week", date(2025, 1, 1))
    assert (w.start, w.end, w.label) == (date(2024, 12, 30), date(2025, 1, 6), "2025-W01")
    m = period("month", date(2024, 12, 31))
    assert (m.start, m.end, m.label) == (date(2024, 12, 1), date(2025, 1, 1), "2024-12")
    assert period("month", date(2024, 2, 10)).days == 29
    y = period("year", date(2024, 7, 1))
    assert (y.start, y.end, y.label, y.days) == (date(2024, 1, 1), date(2025, 1, 1), "2024", 366)
    with pytest.raises(ValueError):
        period("decade", date(2025, 1, 1))
    with pytest.raises(ValueError):
        report(None, "nope", y)
    assert list(reports.REPORTS) == [
        "summary", "stops", "municipalities", "rural", "hours", "weekdays", "topics",
        "age_groups", "first_visits", "quality",
    ]  # fmt: skip


def test_age_groups_outside_15_to_27_are_ordered_and_labelled(tmp_path):
    """The kiosk's "unter 15" and "über 27" come first and last, under their labels."""
    from telemetry.events import CheckIn

    st = Store(tmp_path / "a.db", van="v1")
    try:
        t = datetime(2026, 6, 1, 10, tzinfo=UTC)
        st.record_many([CheckIn(time=t, age_group=a) for a in
                        ("over-27", "18-20", "under-15", "under-15")])  # fmt: skip
        table = report(st.reader(), "age_groups", period("day", t.date()), van="v1")
        assert [r[0] for r in table.rows][:3] == ["under 15", "18-20", "over 27"]
    finally:
        st.close()


def test_the_town_comes_from_the_caller_not_a_spelling(data):
    """cfg.reports["town"]: another town makes every other municipality rural."""
    _datasets, store = data
    conn = store.reader()
    p = period("month", date(2025, 5, 1))
    munis = {r[0]: r[2] for r in report(conn, "municipalities", p).rows[:-1]}
    total = sum(munis.values())
    for town in ("Peine", "Edemissen"):
        rural = dict((r[0], r[2]) for r in report(conn, "rural", p, town=town).rows)
        assert rural[f"Town of {town}"] == munis[town] > 0
        assert rural["Rural municipalities"] == total - munis[town]
        summary = dict(report(conn, "summary", p, town=town, public=True).rows)
        assert summary[f"Visitors outside the town of {town}"] == total - munis[town]
