"""The scorecard page (/staff/scorecard): login and CSRF like every staff page; staff set
and change yearly targets, add their own with monthly actuals, and read every change in
the log; bad input (below zero, not a number, a profile without 12 weights, a year out of
range, an unknown van or target, a forged post) is refused with one clear German line and
nothing is stored. On the hub: each van and all vans, each with its own targets. One
screenshot in Chromium."""

from __future__ import annotations

import re
import shutil
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from kiosk.serve import make_server
from telemetry import registry, targets
from telemetry.config import default_config
from telemetry.events import Footfall
from telemetry.store import Store
from tests.kiosk.test_staff_plan import PASSWORD, login, token_of
from tests.telemetry.test_scorecard import insert_contacts, make_contacts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "telemetry"))
import yeardata  # noqa: E402

VAN, OTHER = "jungregio-1", "van-b"
NOW = datetime(2025, 7, 2, 10, 0, tzinfo=UTC)  # noon in Peine: 50 % of 2025 is over
CFG = default_config()


class Clock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """The box's and the hub's database with 200 days of 2025, made once per module."""
    d = tmp_path_factory.mktemp("scorecard-db")
    y = yeardata.generate(2025, seed=4, van=VAN, days=200)
    rows = make_contacts(VAN, sorted({date.fromisoformat(v.day) for v in y.visits}), 4)
    out = {}
    for mode in ("box", "hub"):
        store = Store(d / f"{mode}.db", van="" if mode == "hub" else VAN, tz=CFG.timezone)
        yeardata.bulk_insert(store, y)
        insert_contacts(store, rows)
        if mode == "hub":
            store.ingest_many([Footfall(time=NOW, kind="in", occupancy=1, van=OTHER)])
            registry.register(store, [OTHER])
        with store.transaction() as conn:
            conn.execute("DELETE FROM outbox")
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        out[mode] = d / f"{mode}.db"
    return out


def _world(tmp_path, mode: str, templates=None):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    if templates is not None:
        shutil.copy(templates[mode], tmp_path / "db.sqlite")
    store = Store(tmp_path / "db.sqlite", van="" if mode == "hub" else VAN, tz=cfg.timezone)
    app = create_app({"TESTING": True}, config=cfg, store=store, mode=mode)
    app.extensions["vanbox_clock"] = Clock()
    return app, store


@pytest.fixture
def box(tmp_path, templates):
    app, store = _world(tmp_path, "box", templates)
    yield app, store
    store.close()


@pytest.fixture
def empty(tmp_path):
    """A box without any data (the form fuzzing needs no figures)."""
    app, store = _world(tmp_path, "box")
    yield app, store
    store.close()


@pytest.fixture
def hub(tmp_path, templates):
    app, store = _world(tmp_path, "hub", templates)
    yield app, store
    store.close()


def post(c, action: str, *, page: str = "/staff/scorecard?year=2025", **form):
    tok = token_of(c.get(page).text)
    return c.post(
        f"/staff/scorecard/{action}", data={"csrf_token": tok, "year": "2025", "van": "", **form}
    )


def stored(store) -> tuple:
    conn = store.reader()
    return tuple(
        tuple(tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3"))
        for t in ("targets", "target_actuals", "target_log")
    )


def error_of(html: str) -> str:
    m = re.search(r'id="sc-error">([^<]*)', html)
    return m.group(1) if m else ""


def card(html: str, code: str) -> str:
    return re.search(rf'<article class="target [a-z]+" id="{code}".*?</article>', html, re.S)[0]


def light(html: str, code: str) -> str:
    return re.search(rf'id="{code}" data-code="{code}" data-light="([a-z]+)"', html)[1]


def value(html: str, code: str, what: str) -> float:
    return float(re.search(rf'class="{what}" data-value="([^"]*)"', card(html, code))[1])


def test_needs_a_login_and_a_csrf_token(box):
    app, store = box
    c = app.test_client()
    r = c.get("/staff/scorecard")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    before = stored(store)
    c = login(app)
    r = c.post("/staff/scorecard/target", data={"year": "2025", "code": "contacts", "value": "9"})
    assert r.status_code == 400 and "CSRF" in r.text
    r = c.post(
        "/staff/scorecard/target",
        data={"year": "2025", "code": "contacts", "value": "9", "csrf_token": "forged"},
    )
    assert r.status_code == 400
    assert stored(store) == before == ((), (), ())
    page = c.get("/staff/scorecard")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"


def test_set_change_and_read_the_log(box):
    app, store = box
    c = login(app)
    html = c.get("/staff/scorecard?year=2025").text
    assert "grün: Ist ≥ 100 % des Solls bis heute" in html and "gelb: ≥ 85 %" in html
    assert "rot: unter 85 %" in html and "Summe der erreichten Personen" in html
    assert light(html, "contacts") == "none" and "kein Ziel" in card(html, "contacts")
    actual = value(html, "contacts", "actual")
    assert actual > 100
    # a target the contacts so far just reach: expected = target * 0.5 (noon, July 2)
    r = post(c, "target", code="contacts", value=f"{actual * 2 * 0.999:.2f}".replace(".", ","))
    assert r.status_code == 303 and "done=target" in r.headers["Location"]
    html = c.get(r.headers["Location"]).text
    assert "Ziel gespeichert." in html and light(html, "contacts") == "green"
    # changed: 1 % more than reached -> yellow
    high = round(actual * 2 * 1.01)
    assert post(c, "target", code="contacts", value=str(high)).status_code == 303
    assert light(c.get("/staff/scorecard?year=2025").text, "contacts") == "yellow"
    # with a monthly profile that expects 3/4 by July: red
    r = post(c, "target", code="contacts", value=str(high), profile="3;3;3;3;3;3;1;1;1;1;1;1")
    assert r.status_code == 303
    html = c.get("/staff/scorecard?year=2025").text
    assert light(html, "contacts") == "red"
    assert value(html, "contacts", "expected") == pytest.approx(high * (18 + 1.5 / 31) / 24)
    assert "Soll nach Monatsprofil" in card(html, "contacts")
    rows = re.findall(
        r'<tr data-code="contacts" data-field="([a-z_]+)"><td>([^<]+)</td>'
        r"<td>([^<]+)</td><td>[^<]+</td><td>[^<]+</td><td>([^<]+)</td><td>([^<]+)</td>",
        html,
    )
    fields = [r[0] for r in rows]
    assert fields == ["profile", "value", "value", "target"]
    assert rows[0][1:] == (
        "02.07.2025 12:00",
        "anna",
        "nach Tagen",
        "3; 3; 3; 3; 3; 3; 1; 1; 1; 1; 1; 1",
    )
    assert rows[1][3] == targets.fmt_number(round(actual * 2 * 0.999, 2))
    assert rows[1][4] == targets.fmt_number(high)
    # saving the same again changes nothing and logs nothing
    before = stored(store)
    r = post(c, "target", code="contacts", value=str(high), profile="3 3 3 3 3 3 1 1 1 1 1 1")
    assert "done=same" in r.headers["Location"] and stored(store) == before
    # removed: logged, and the year before / after is untouched
    assert post(c, "remove", code="contacts").status_code == 303
    html = c.get("/staff/scorecard?year=2025").text
    assert light(html, "contacts") == "none" and "entfernt" in html


BAD = [
    ({"code": "contacts", "value": "-5"}, "ein Ziel kann nicht unter 0 liegen"),
    ({"code": "contacts", "value": "viele"}, "keine Zahl"),
    ({"code": "contacts", "value": ""}, "bitte eine Zahl angeben"),
    ({"code": "contacts", "value": "NaN"}, "keine Zahl"),
    ({"code": "punctuality", "value": "101"}, "höchstens 100"),
    ({"code": "contacts", "value": "10", "profile": "1;2;3"}, "genau 12 Gewichte"),
    ({"code": "contacts", "value": "10", "profile": "1;1;1;1;1;1;1;1;1;1;1;x"}, "keine Zahl"),
    ({"code": "contacts", "value": "10", "profile": "0;0;0;0;0;0;0;0;0;0;0;0"}, "über 0"),
    ({"code": "no-such-figure", "value": "10"}, "Ziel: unbekannt"),
]


@pytest.mark.parametrize(("form", "why"), BAD)
def test_bad_input_is_refused_and_nothing_is_stored(box, form, why):
    app, store = box
    c = login(app)
    assert post(c, "target", code="hours", value="800").status_code == 303
    before = stored(store)
    r = post(c, "target", **form)
    assert r.status_code == 400
    assert error_of(r.text).startswith("Nicht gespeichert:") and why in error_of(r.text)
    assert stored(store) == before


@pytest.mark.parametrize("year", ["1999", "2101", "20x5", "", "202¹", "٢٠٢٦"])
def test_a_year_out_of_range_is_refused(box, year):
    app, store = box
    c = login(app)
    tok = token_of(c.get("/staff/scorecard").text)
    r = c.post(
        "/staff/scorecard/target",
        data={"csrf_token": tok, "year": year, "code": "contacts", "value": "10"},
    )
    assert r.status_code == 400 and "Jahr: bitte ein Jahr von 2000 bis 2100" in r.text
    assert c.get(f"/staff/scorecard?year={year or 'x'}").status_code == 400
    assert stored(store) == ((), (), ())


def test_custom_target_with_monthly_actuals_lower_is_better(box):
    app, store = box
    c = login(app)
    r = post(c, "custom", name="Beschwerden", unit="Fälle", value="24", lower_better="1")
    assert r.status_code == 303
    code = "custom-beschwerden"
    html = c.get("/staff/scorecard?year=2025").text
    assert "Noch keine Ist-Werte" in card(html, code) and light(html, code) == "none"
    # Jan..Jun entered: 12 in all; expected to the end of June = 24 * 181/365 = 11.9
    form = {f"m{m}": "2" for m in range(1, 7)}
    assert post(c, "actuals", code=code, **form).status_code == 303
    html = c.get("/staff/scorecard?year=2025").text
    assert value(html, code, "actual") == 12
    assert value(html, code, "expected") == pytest.approx(24 * 181 / 365)
    assert light(html, code) == "yellow"  # a little more than expected: lower is better
    assert post(c, "actuals", code=code, **form | {"m6": "1,5"}).status_code == 303  # June
    html = c.get("/staff/scorecard?year=2025").text
    assert value(html, code, "actual") == 11.5 and light(html, code) == "green"
    assert re.search(r'data-field="actual-06">.*?<td>2</td><td>1,5</td>', html)
    # bad actuals: nothing stored
    before = stored(store)
    for bad, why in (("-1", "unter 0"), ("zwei", "keine Zahl")):
        r = post(c, "actuals", code=code, m3=bad)
        assert r.status_code == 400 and "Ist-Wert Mär" in error_of(r.text) and why in r.text
    r = post(c, "actuals", code="contacts", m1="5")
    assert r.status_code == 400 and "nur für eigene Ziele" in error_of(r.text)
    r = post(c, "custom", name="", value="3")
    assert r.status_code == 400 and "Name: bitte angeben" in error_of(r.text)
    r = post(c, "custom", name="<script>", value="3")
    assert r.status_code == 400 and "Name" in error_of(r.text)
    assert stored(store) == before


def test_targets_are_versioned_by_year_and_copied_forward(box):
    app, store = box
    c = login(app)
    assert post(c, "target", code="hours", value="900").status_code == 303
    html = c.get("/staff/scorecard?year=2026").text
    assert "Ziele aus 2025 übernehmen" in html and "kein Ziel" in card(html, "hours")
    tok = token_of(html)
    r = c.post("/staff/scorecard/copy", data={"csrf_token": tok, "year": "2026"})
    assert r.status_code == 303
    html = c.get("/staff/scorecard?year=2026").text
    assert "aus 2025 übernommen" in html and "900" in card(html, "hours")
    # a future year has no figures yet: no light
    assert light(html, "hours") == "none"
    r = c.post(
        "/staff/scorecard/target",
        data={"csrf_token": tok, "year": "2026", "code": "hours", "value": "1000"},
    )
    assert r.status_code == 303
    conn = store.reader()
    assert targets.targets(conn, 2025, VAN)["hours"].value == 900
    assert targets.targets(conn, 2026, VAN)["hours"].value == 1000


def test_hub_each_van_and_all_vans_have_their_own_targets(hub):
    app, store = hub
    c = login(app)
    html = c.get("/staff/scorecard?year=2025").text
    assert 'id="van"' in html and f'<option value="{OTHER}"' in html and "alle Busse" in html
    r = post(
        c,
        "target",
        code="hours",
        value="500",
        van=VAN,
        page=f"/staff/scorecard?year=2025&van={VAN}",
    )
    assert r.status_code == 303 and f"van={VAN}" in r.headers["Location"]
    assert post(c, "target", code="hours", value="700").status_code == 303  # all vans
    conn = store.reader()
    assert targets.targets(conn, 2025, VAN)["hours"].value == 500
    assert targets.targets(conn, 2025, "")["hours"].value == 700
    one = c.get(f"/staff/scorecard?year=2025&van={VAN}").text
    every = c.get("/staff/scorecard?year=2025").text
    assert value(one, "hours", "actual") == value(every, "hours", "actual")  # van-b: no data
    assert "500" in card(one, "hours") and "700" in card(every, "hours")
    before = stored(store)
    r = post(c, "target", code="hours", value="1", van="no-such-van")
    assert r.status_code == 400 and "Fahrzeug: unbekannt" in r.text
    assert c.get("/staff/scorecard?van=no-such-van").status_code == 400
    assert stored(store) == before


FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**12), 10**12).map(str),
    st.decimals(-(10**6), 10**10, places=2).map(lambda d: str(d).replace(".", ",")),
    st.text(max_size=12),
)
profiles = st.one_of(
    st.just(""),
    st.lists(numbers, min_size=0, max_size=14).map("; ".join),
)


@FUZZ
@given(
    value=numbers,
    profile=profiles,
    code=st.sampled_from(["contacts", "punctuality", "x"]),
    year=st.one_of(st.integers(1990, 2110).map(str), st.text(max_size=5)),
)
@example(value="1.234,5", profile="", code="contacts", year="2025")
@example(value="87,5", profile="1;1;1;1;1;1;1;1;1;1;1;2", code="punctuality", year="2100")
@example(value="100,5", profile="", code="punctuality", year="2025")
def test_any_form_is_stored_as_parsed_or_refused_with_nothing_stored(
    empty, value, profile, code, year
):
    app, store = empty
    if "sc_client" not in app.extensions:  # one login for all examples
        c = login(app)
        app.extensions["sc_client"] = (c, token_of(c.get("/staff/scorecard").text))
    c, tok = app.extensions["sc_client"]
    before = stored(store)
    r = c.post(
        "/staff/scorecard/target",
        data={"csrf_token": tok, "year": year, "code": code, "value": value, "profile": profile},
    )
    try:
        y = targets.parse_year(year)
        want = targets.parse_number(value, "x", hi=100.0 if code == "punctuality" else 1e9)
        prof = targets.parse_profile(profile)
        assert code != "x"
    except (targets.TargetError, AssertionError):
        assert r.status_code == 400, (value, profile, code, year)
        assert stored(store) == before
        return
    assert r.status_code == 303
    t = targets.targets(store.reader(), y, VAN)[code]
    assert (t.value, t.profile) == (want, prof)


# --- in the browser -----------------------------------------------------------------------


def test_screenshot(box, browser, screenshot_dir):
    app, store = box
    c = login(app)
    for code, v in (
        ("contacts", "1900"),
        ("first-contacts", "600"),
        ("rural-share", "80"),
        ("municipalities", "7"),
        ("served", "95"),
        ("hours", "1800"),
        ("punctuality", "90"),
        ("referrals-jobcenter", "60"),
    ):
        assert post(c, "target", code=code, value=v).status_code == 303
    server = make_server(app, host="127.0.0.1", port=0, role="box", threads=2, ident="test")
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{server.effective_port}"
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 900}, has_touch=True, locale="de-DE"
    )
    try:
        page = ctx.new_page()
        page.goto(f"{url}/staff/login?next=/staff/scorecard?year=2025")
        page.fill("input[name=name]", "anna")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#ziele")
        # a custom target, set by taps
        page.locator("#eigene > summary").tap()
        page.fill("#new-name", "Elternabende")
        page.fill("#new-unit", "Termine")
        page.fill("#new-value", "10")
        page.locator("#eigene button[type=submit]").tap()
        page.wait_for_selector("#sc-info")
        assert "Eigenes Ziel angelegt." in page.inner_text("#sc-info")
        assert page.locator("#contacts svg").count() == 1
        assert page.get_attribute("#contacts", "data-light") in ("green", "yellow", "red")
        page.screenshot(path=str(screenshot_dir / "scorecard-box.png"), full_page=True)
    finally:
        ctx.close()
        server.close()
        t.join(5)
