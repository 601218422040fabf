"""The scorecard's figures against the ground truth of a generated year (tour, stop visits,
check-ins, and counselling contacts with referrals made here), and the traffic lights of
targets set for that year, evaluated at its midpoint, just above and below each threshold.
Targets are versioned by year and every change is logged."""

from __future__ import annotations

import json
import random
import sys
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from telemetry import reports, scorecard, targets
from telemetry.config import default_config
from telemetry.plan import Plan, PlanException, save_plan
from telemetry.store import Store
from telemetry.tour import visits_on

sys.path.insert(0, str(Path(__file__).parent))
import yeardata  # noqa: E402

VAN1, VAN2 = "jungregio-1", "van-b"
CFG = default_config()
TZ = CFG.tz
TOWN = CFG.reports["town"]
MUNIS = list(CFG.reports["municipalities"])
PARTNERS = [p["code"] for p in CFG.contacts["partners"]]
MID = datetime(2025, 7, 2, 0, 0, tzinfo=TZ)  # 182 of 365 days are over
FRAC = 182 / 365
LATE_MUNI = "Lengede"
X1, X2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))  # contacts from there only from August on


def make_contacts(van: str, days: list[date], seed: int) -> list[dict]:
    rng = random.Random(f"contacts-{van}-{seed}")
    out = []
    for day in days:
        for _ in range(rng.randint(0, 6)):
            hour = rng.randint(9, 19)
            local = datetime.combine(day, time(hour), tzinfo=TZ)
            muni = rng.choice([*MUNIS, "outside"])
            if muni == LATE_MUNI and day.month < 8:
                muni = TOWN
            out.append(
                {
                    "id": str(uuid.uuid4()),
                    "van": van,
                    "ts": local.timestamp(),
                    "day": day.isoformat(),
                    "hour": hour,
                    "kind": rng.choice(["kurz", "beratung", "gruppe"]),
                    "topics": json.dumps(["job"]),
                    "duration": "15-30",
                    "age_group": "18-20",
                    "municipality": muni,
                    "first_contact": int(rng.random() < 0.4),
                    "persons": 1 if rng.random() < 0.85 else rng.randint(2, 12),
                    "referrals": json.dumps(rng.sample(PARTNERS, rng.choice([0, 0, 0, 1, 1, 2]))),
                    "outcome": "geklaert",
                }
            )
    return out


def insert_contacts(store: Store, rows: list[dict]) -> None:
    cols = list(rows[0])
    with store.transaction() as conn:
        conn.executemany(
            f"INSERT INTO contacts ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r[c] for c in cols) for r in rows],
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    st = Store(tmp_path_factory.mktemp("sc") / "hub.db", tz=CFG.timezone)
    y1 = yeardata.generate(2025, seed=1, van=VAN1)
    y2 = yeardata.generate(2025, seed=2, van=VAN2, sensor="door", days=61, start=date(2025, 3, 1))
    contacts = []
    for y in (y1, y2):
        yeardata.bulk_insert(st, y)
        days = sorted({date.fromisoformat(v.day) for v in y.visits})
        contacts += make_contacts(y.van, days, 1)
    insert_contacts(st, contacts)
    # van-b has a stored plan (the same weekly stops) from before the year
    plan_b = replace(
        Plan.from_tour(VAN2, CFG.tour),
        version=1,
        updated=datetime(2024, 12, 1, tzinfo=UTC).timestamp(),
    )
    assert save_plan(st, plan_b)
    yield st, (y1, y2), contacts
    st.close()


def collect(st, *, van, until=MID, year=2025):
    return scorecard.collect(
        st.reader(),
        year,
        van=van,
        until=until,
        tz=TZ,
        town=TOWN,
        municipalities=MUNIS,
        vans=[VAN1, VAN2],
        fallback={VAN1: Plan.from_tour(VAN1, CFG.tour)},
    )


# --- ground truth ---------------------------------------------------------------------------


def truth_contacts(contacts, van, until):
    rows = [
        c
        for c in contacts
        if (van is None or c["van"] == van)
        and c["ts"] < until.timestamp()
        and c["day"] >= "2025-01-01"
    ]
    persons = sum(c["persons"] for c in rows)
    first = sum(c["persons"] for c in rows if c["first_contact"])
    rural = sum(
        c["persons"] for c in rows if c["municipality"] in MUNIS and c["municipality"] != TOWN
    )
    reached = {c["municipality"] for c in rows if c["municipality"] in MUNIS}
    refs = {p: sum(p in json.loads(c["referrals"]) for c in rows) for p in PARTNERS}
    return persons, first, rural, reached, refs


def truth_tour(years, until, with_plan_b=True):
    """(planned, served, punctual, hours) from the generator's own visits and the tour."""
    planned = served = punctual = 0
    hours = 0.0
    for y in years:
        if y.van == VAN2 and not with_plan_b:
            continue
        by = {(v.day, v.name): v for v in y.visits if v.planned}
        d = date(2025, 1, 1)
        while d < until.astimezone(TZ).date():
            for pv in visits_on(CFG.tour, d, TZ):
                if pv.end > until:
                    continue
                planned += 1
                tv = by.get((d.isoformat(), pv.stop.name))
                if tv is not None:
                    served += 1
                    punctual += tv.arrived <= pv.start.timestamp() + 600
            d += timedelta(days=1)
        for v in y.visits:
            if v.arrived < until.timestamp():
                hours += (min(v.left, until.timestamp()) - v.arrived) / 3600
    return planned, served, punctual, hours


@pytest.mark.parametrize("van", [VAN1, None])
def test_every_figure_matches_the_ground_truth_at_the_midpoint(world, van):
    st, years, contacts = world
    data = collect(st, van=van)
    s = data.series
    persons, first, rural, reached, refs = truth_contacts(contacts, van, MID)
    assert persons > 500 and 0 < first < persons and 0 < rural < persons
    assert s["contacts"].total("sum") == persons
    assert s["first-contacts"].total("sum") == first
    assert s["rural-share"].total("rate") == pytest.approx(100 * rural / persons)
    assert LATE_MUNI not in reached and len(reached) == len(MUNIS) - 1
    assert s["municipalities"].total("level", 6) == len(reached)
    for p in PARTNERS:
        assert s[f"referrals-{p}"].total("sum") == refs[p] > 0
    ys = [y for y in years if van is None or y.van == van]
    planned, served, punctual, hours = truth_tour(ys, MID)
    assert 0 < served < planned and 0 < punctual < served  # the generator drops and delays
    assert (data.planned, sum(s["served"].den), sum(s["served"].num)) == (planned, planned, served)
    assert sum(s["punctuality"].num) == punctual
    assert s["punctuality"].total("rate") == pytest.approx(100 * punctual / served)
    assert s["hours"].total("sum") == pytest.approx(hours, rel=1e-9)
    # nothing after the midpoint counts: of July only the 1st
    assert all(v == 0 for k in ("contacts", "hours") for v in s[k].num[7:])
    assert all(v == 0 for v in data.reference["checkins"][7:])
    july1 = (
        truth_contacts(contacts, van, MID)[0]
        - truth_contacts(contacts, van, MID - timedelta(days=1))[0]
    )
    assert s["contacts"].num[6] == july1


def test_reference_lines_are_the_check_ins_and_visits_of_the_reports(world):
    st, (y1, _y2), _ = world
    data = collect(st, van=VAN1)
    for m in range(1, 7):
        checkins = sum(1 for c in y1.checkins if c.day[:7] == f"2025-{m:02d}")
        assert data.reference["checkins"][m - 1] == checkins
        summary = reports.report(
            st.reader(), "summary", reports.period("month", date(2025, m, 1)), van=VAN1
        )
        assert data.reference["visits"][m - 1] == dict(summary.rows)["Visitors"]


def test_the_whole_year_and_a_year_not_begun(world):
    st, years, contacts = world
    end = datetime(2026, 1, 1, tzinfo=TZ)
    data = collect(st, van=None, until=end)
    persons, _f, _r, reached, _refs = truth_contacts(contacts, None, end)
    assert data.series["contacts"].total("sum") == persons
    assert data.series["municipalities"].total("level") == len(MUNIS) == len(reached)
    assert data.planned == truth_tour(years, end)[0]
    before = collect(st, van=None, until=datetime(2025, 1, 1, tzinfo=TZ))
    assert before.series == {} and before.planned == 0


def test_the_plan_in_force_that_day_cancellations_and_announced_delays(world, tmp_path):
    """A stored plan version cancels a visit the van missed and delays one it was late
    for: the missed one is no longer planned, the late one is punctual."""
    _st, (y1, _), _ = world
    st = Store(tmp_path / "box.db", van=VAN1, tz=CFG.timezone)
    yeardata.bulk_insert(st, y1)
    base = collect(st, van=VAN1)
    by = {(v.day, v.name): v for v in y1.visits if v.planned}
    missed = late = None
    for d in (date(2025, 1, 1) + timedelta(days=i) for i in range(150)):  # to May
        for pv in visits_on(CFG.tour, d, TZ):
            tv = by.get((d.isoformat(), pv.stop.name))
            if tv is None and missed is None:
                missed = (d, pv)
            elif tv and late is None and 600 < tv.arrived - pv.start.timestamp() < 3600:
                late = (d, pv, int((tv.arrived - pv.start.timestamp()) // 60))
    assert missed and late
    plan = Plan.from_tour(VAN1, CFG.tour)
    key = {s.name: s.key for s in plan.stops}
    plan = plan.with_exception(
        PlanException(X1, "cancel", missed[0], stop_key=key[missed[1].stop.name]), now=1.0
    )
    plan = plan.with_exception(
        PlanException(X2, "delay", late[0], stop_key=key[late[1].stop.name], delay_min=late[2]),
        now=2.0,
    )
    # in force from December; a later version (the exceptions taken back) from June on
    plan = replace(plan, updated=datetime(2024, 12, 15, tzinfo=UTC).timestamp())
    assert save_plan(st, plan)
    later = replace(
        plan.without_exception(X1).without_exception(X2),
        updated=datetime(2025, 6, 1, tzinfo=UTC).timestamp(),
    )
    assert save_plan(st, later)
    after = collect(st, van=VAN1)
    assert after.planned == base.planned - 1 and after.cancelled == 1
    assert sum(after.series["served"].num) == sum(base.series["served"].num)
    assert sum(after.series["punctuality"].num) == sum(base.series["punctuality"].num) + 1
    st.close()


# --- evaluation -----------------------------------------------------------------------------


def test_elapsed_by_days_and_by_profile():
    assert scorecard.elapsed(2025, MID, TZ) == pytest.approx(FRAC)
    assert scorecard.elapsed(2025, datetime(2025, 1, 1, tzinfo=TZ), TZ) == 0
    assert scorecard.elapsed(2025, datetime(2026, 1, 1, tzinfo=TZ), TZ) == 1
    profile = (1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 6)
    assert scorecard.elapsed(2025, MID, TZ, profile) == pytest.approx(6 / 12)
    assert scorecard.elapsed(2025, datetime(2025, 12, 16, 12, tzinfo=TZ), TZ, profile) == (
        pytest.approx((6 + 6 * 15.5 / 31) / 12)
    )


RATIOS = [(1.001, "green"), (0.999, "yellow"), (0.851, "yellow"), (0.849, "red")]


@pytest.mark.parametrize(("ratio", "light"), RATIOS)
def test_lights_at_the_midpoint_just_above_and_below_each_threshold(world, ratio, light):
    st, _years, _ = world
    data = collect(st, van=VAN1)
    figs = {f.code: f for f in scorecard.figures(TOWN, MUNIS, CFG.contacts["partners"])}
    for code in (
        "contacts",
        "first-contacts",
        "hours",
        "referrals-jobcenter",
        "rural-share",
        "served",
        "punctuality",
    ):
        f = figs[code]
        actual = data.series[code].total(f.kind, scorecard.months_counted(2025, MID, TZ))
        # the target whose expected figure to date is actual / ratio
        value = actual / ratio / (FRAC if f.kind == "sum" else 1)
        t = targets.Target(2025, VAN1, code, value)
        r = scorecard.evaluate(f, t, data.series[code], year=2025, until=MID, tz=TZ)
        assert r.actual == pytest.approx(actual) and r.light == light, code
        assert r.expected == pytest.approx(actual / ratio)
        assert r.attainment == pytest.approx(100 * ratio)
        if f.kind == "sum":
            assert r.forecast == pytest.approx(actual / FRAC)
        else:
            assert r.forecast == pytest.approx(actual)


@pytest.mark.parametrize(("goal", "light"), [(6, "green"), (7, "yellow"), (8, "red")])
def test_municipalities_reached_is_a_level(world, goal, light):
    st, _years, _ = world
    data = collect(st, van=VAN1)
    f = next(f for f in scorecard.figures(TOWN, MUNIS, []) if f.code == "municipalities")
    r = scorecard.evaluate(
        f,
        targets.Target(2025, VAN1, f.code, goal),
        data.series[f.code],
        year=2025,
        until=MID,
        tz=TZ,
    )
    assert (r.actual, r.expected, r.forecast, r.light) == (6, goal, 6, light)


@pytest.mark.parametrize(("ratio", "light"), RATIOS)
def test_a_custom_target_where_lower_is_better(ratio, light):
    """Entered Jan..Jun; evaluated to the end of June: expected = target * 181/365."""
    t = targets.Target(2025, VAN1, "custom-beschwerden", 0, label="Beschwerden", lower_better=True)
    entered = {m: 2.0 for m in range(1, 7)}
    monthly = scorecard.custom_monthly(entered)
    at = scorecard.custom_until(2025, entered, MID, TZ)
    assert at == datetime(2025, 7, 1, tzinfo=TZ)
    frac = 181 / 365
    # lower is better: attainment = expected / actual
    t = replace(t, value=12.0 * ratio / frac)
    r = scorecard.evaluate(scorecard.custom_figure(t), t, monthly, year=2025, until=at, tz=TZ)
    assert r.actual == 12 and r.upto == 6
    assert r.expected == pytest.approx(12 * ratio) and r.light == light
    none = scorecard.evaluate(
        scorecard.custom_figure(t), t, scorecard.custom_monthly({}), year=2025, until=None, tz=TZ
    )
    assert (none.actual, none.light) == (None, "none")


def test_a_profile_moves_the_expected_figure(world):
    st, _years, _ = world
    data = collect(st, van=VAN1)
    f = scorecard.figures(TOWN, MUNIS, [])[0]
    profile = (1, 1, 1, 1, 1, 1, 6, 1, 1, 1, 1, 1)
    t = targets.Target(2025, VAN1, "contacts", 1700, profile=profile)
    r = scorecard.evaluate(f, t, data.series["contacts"], year=2025, until=MID, tz=TZ)
    assert r.expected == pytest.approx(1700 * (6 + 6 / 31) / 17)
    # the chart: cumulative actual up to June, the expected path for all 12 months
    assert r.chart_columns[:3] == ("Monat", "Ist (kumuliert)", "Soll (kumuliert)")
    assert r.upto == 7  # July 1 is over
    assert r.chart[6][1] == pytest.approx(r.actual) and r.chart[7][1] is None
    assert r.chart[11][2] == pytest.approx(1700)


# --- storage --------------------------------------------------------------------------------


def test_targets_are_versioned_by_year_and_every_change_is_logged(tmp_path):
    st = Store(tmp_path / "t.db", van=VAN1)
    t = targets.Target(2025, VAN1, "contacts", 1200)
    assert targets.save(st, t, user="anna", now=100.0)
    assert not targets.save(st, t, user="anna", now=101.0)  # the same again: no change
    assert targets.save(st, replace(t, value=1500, profile=(1,) * 12), user="ben", now=200.0)
    assert targets.copy_year(st, 2025, 2026, VAN1, user="anna", now=300.0) == 1
    assert targets.save(st, replace(t, year=2026, value=1800), user="anna", now=400.0)
    conn = st.reader()
    assert targets.targets(conn, 2025, VAN1)["contacts"].value == 1500
    assert targets.targets(conn, 2026, VAN1)["contacts"].value == 1800
    assert targets.targets(conn, 2025, "") == {}
    log25 = [(e.user, e.field, e.old, e.new) for e in targets.log(conn, 2025, VAN1)]
    assert log25 == [
        ("ben", "profile", "nach Tagen", "1; 1; 1; 1; 1; 1; 1; 1; 1; 1; 1; 1"),
        ("ben", "value", "1.200", "1.500"),
        ("anna", "value", None, "1.200"),
        ("anna", "target", None, "angelegt"),
    ]
    assert [e.new for e in targets.log(conn, 2026, VAN1) if e.field == "value"][0] == "1.800"
    assert targets.remove(st, 2025, VAN1, "contacts", user="ben", now=500.0)
    assert targets.log(conn, 2025, VAN1)[0].new == "entfernt"
    assert "contacts" in targets.targets(conn, 2026, VAN1)
    st.close()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1200", 1200),
        ("1.200", 1200),
        ("1.234,5", 1234.5),
        ("87,5", 87.5),
        ("87.5", 87.5),
        (" 0 ", 0),
    ],
)
def test_numbers_as_staff_type_them(text, value):
    assert targets.parse_number(text, "Ziel") == value


@pytest.mark.parametrize(
    "text", ["-1", "-0,5", "abc", "", "nan", "inf", "1e3", "1,2,3", "2000000000"]
)
def test_bad_numbers_are_refused_with_a_message(text):
    with pytest.raises(targets.TargetError, match="Ziel"):
        targets.parse_number(text, "Ziel")


def test_profiles_need_twelve_weights():
    assert targets.parse_profile("") is None
    assert targets.parse_profile("1;2;3;4;5;6;7;8;9;10;11;12")[11] == 12
    for bad, why in [
        ("1;2;3", "genau 12"),
        ("0;" * 11 + "0", "über 0"),
        ("1;" * 11 + "-1", "unter 0"),
        ("1;" * 12 + "1", "nicht 13"),
    ]:
        with pytest.raises(targets.TargetError, match=why):
            targets.parse_profile(bad)


def test_an_open_stop_visit_counts_until_now_at_most_twelve_hours(tmp_path):
    st = Store(tmp_path / "open.db", van=VAN1, tz=CFG.timezone)
    now = datetime(2025, 3, 10, 15, 0, tzinfo=TZ)
    rows = [  # (arrived, left): closed 1 h; open for 2 h now; open since 20 h (capped: 12 h)
        (now - timedelta(hours=30), now - timedelta(hours=29)),
        (now - timedelta(hours=2), None),
        (now - timedelta(hours=20), None),
        (now + timedelta(hours=1), None),  # after now: not counted
    ]
    with st.transaction() as conn:
        for i, (a, left) in enumerate(rows):
            conn.execute(
                'INSERT INTO stop_visits (id, van, arrived, "left", day, name, municipality,'
                " lat, lon, planned) VALUES (?, ?, ?, ?, ?, 'x', 'Peine', 52.3, 10.2, 0)",
                (f"v{i}", VAN1, a.timestamp(), left and left.timestamp(), a.date().isoformat()),
            )
    data = collect(st, van=VAN1, until=now)
    assert data.series["hours"].total("sum") == pytest.approx(1 + 2 + 12)
    st.close()
