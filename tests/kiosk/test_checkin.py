"""The check-in through Flask's test client: the flow, strict checking of posts (400 and
nothing stored), CSRF, the repeated-tap guard, hub mode, and privacy (no client address
or user agent in any database row or log line)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from kiosk import checkin, create_app
from telemetry.config import default_config
from telemetry.store import Store

IP = "203.0.113.77"
FORWARDED = "198.51.100.23"
AGENT = "ProbeAgent/9.9 (unique-ua-7f3a1c)"


@pytest.fixture
def db(tmp_path: Path):
    st = Store(tmp_path / "vanbox.db", van="testvan", tid="TV")
    yield st
    st.close()


def make_app(db: Store, **kiosk):
    return create_app(config=default_config({"kiosk": kiosk} if kiosk else None), store=db)


@pytest.fixture
def app(db):
    return make_app(db)


@pytest.fixture
def client(app):
    return app.test_client()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def begin(client, lang: str = "de") -> dict[str, str]:
    """Open step 1; returns the hidden fields (csrf_token, flow)."""
    r = client.get(f"/{lang}/checkin")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    return {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1),
        "flow": re.search(r'name="flow" value="([^"]+)"', html).group(1),
    }


def final_post(form: dict, **answers) -> dict:
    data = {**form, "step": "visit", "age": "18-20", "topic": ["job"], "first_visit": "no"}
    data.update(answers)
    return data


def rows(db: Store) -> list[dict]:
    return [dict(r) for r in db.reader().execute("SELECT * FROM checkins").fetchall()]


# --- screens and flow ----------------------------------------------------------------


def test_start_page_is_german_with_every_language_by_its_own_name(client, app):
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="de" dir="ltr">' in html
    assert "Tippe auf deine Sprache" in html
    for code, name in [("de", "Deutsch"), ("en", "English"), ("tr", "Türkçe"),
                       ("ar", "العربية"), ("uk", "Українська"), ("ru", "Русский"),
                       ("fa", "فارسی")]:  # fmt: skip
        assert f'href="/{code}/checkin" lang="{code}"' in html
        assert f">{name}</a>" in html
    assert len(re.findall(r"<li[ >]", html)) == 3  # the next three stops of the default tour
    assert "<svg" in html and 'class="qr-code"' in html
    assert r.headers.get("Set-Cookie") is None  # no cookie at all on the start screen
    assert "http://" not in html.replace(r.request.host_url, "")  # nothing external


@pytest.mark.parametrize(("lang", "direction", "text"), [
    ("en", "ltr", "Tap your language to start."),
    ("ar", "rtl", "اضغط على لغتك للبدء."),
    ("fa", "rtl", "برای شروع، زبانت را لمس کن."),
    ("uk", "ltr", "Торкнися своєї мови, щоб почати."),
])  # fmt: skip
def test_start_page_in_each_language(client, lang, direction, text):
    html = client.get(f"/{lang}/").get_data(as_text=True)
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert text in html


def test_qr_code_points_to_the_public_map_or_the_box_map(db):
    url = "https://vanbox.example.org/map/jungregio-1"
    html = make_app(db, public_map_url=url).test_client().get("/").get_data(as_text=True)
    assert checkin._qr_svg(url) in html
    html = make_app(db).test_client().get("/").get_data(as_text=True)
    assert checkin._qr_svg("http://localhost/map") in html
    assert checkin._qr_svg(url) not in html


def test_unknown_or_disabled_language_is_404(db):
    client = make_app(db, languages=["de", "en"]).test_client()
    assert client.get("/xx/").status_code == 404
    assert client.get("/ar/checkin").status_code == 404  # known but not enabled
    assert client.get("/en/checkin").status_code == 200
    html = client.get("/").get_data(as_text=True)
    assert "English" in html and "العربية" not in html


def test_full_flow_records_one_checkin_with_categories_only(client, db):
    form = begin(client, "tr")
    answers = {"age": "15-17"}

    def post(step: str, **more):
        answers.update(more)
        return client.post("/tr/checkin", data={**form, "step": step, **answers})

    r = post("age")
    assert r.status_code == 200 and "Bugün seni buraya ne getirdi?" in r.get_data(as_text=True)
    r = post("topics", topic=["papers", "school"])
    assert "Bize ilk kez mi geliyorsun?" in r.get_data(as_text=True)
    r = post("visit", first_visit="yes")
    assert "Bizi nereden duydun?" in r.get_data(as_text=True)
    assert rows(db) == []
    r = post("heard", heard_from="social_media")
    assert r.status_code == 303 and r.headers["Location"] == "/tr/thanks"
    (row,) = rows(db)
    assert row["age_group"] == "15-17" and row["language"] == "tr"
    assert json.loads(row["topics"]) == ["school", "papers"]  # canonical order
    assert row["first_visit"] == 1 and row["heard_from"] == "social_media"
    assert row["ts"] % 3600 == 0
    (out,) = db.pending()
    payload = json.loads(out.payload)
    assert out.kind == "checkin"
    assert set(payload) == {"id", "tst", "age_group", "topics", "first_visit", "heard_from", "lang"}
    assert payload["tst"] % 3600 == 0 and payload["id"] == row["id"]
    thanks = client.get("/tr/thanks").get_data(as_text=True)
    assert "Teşekkürler!" in thanks


def test_skipping_everything_optional(client, db):
    form = begin(client, "en")
    r = client.post("/en/checkin", data={**form, "step": "heard", "age": "unsaid",
                                         "first_visit": "yes", "heard_from": "skip"})  # fmt: skip
    assert r.status_code == 303
    r = client.post("/en/checkin", data={**begin(client, "en"), "step": "visit",
                                         "age": "unsaid", "first_visit": "unsaid"})  # fmt: skip
    assert r.status_code == 303
    got = sorted(
        ((r["first_visit"], r["heard_from"], r["topics"]) for r in rows(db)),
        key=lambda t: -1 if t[0] is None else t[0],
    )
    # two visitors, two flows: two rows, however close together
    assert got == [(None, None, "[]"), (1, None, "[]")]


def test_screens_carry_idle_time_and_work_without_javascript(db):
    client = make_app(db, idle_seconds=45).test_client()
    html = client.get("/de/checkin").get_data(as_text=True)
    assert 'data-idle-ms="45000"' in html
    assert '<noscript><meta http-equiv="refresh" content="45;url=/"></noscript>' in html
    assert 'data-health-url="/healthz"' in html
    assert "Zum Start" in html  # the way back on every screen
    assert html.count('type="submit"') == 7  # one tap per age group (under 15 .. over 27)
    assert "Zurück" in html and "Schritt 1 von 4" in html


# --- misuse: 400, nothing stored -----------------------------------------------------

BAD = {
    "no csrf token": lambda f: {k: v for k, v in final_post(f).items() if k != "csrf_token"},
    "wrong csrf token": lambda f: final_post(f, csrf_token="0" * 64),
    "two csrf tokens": lambda f: final_post(f, csrf_token=[f["csrf_token"], f["csrf_token"]]),
    "unknown field": lambda f: final_post(f, name="Max Mustermann"),
    "free text topic": lambda f: final_post(f, topic=["I need help with my landlord"]),
    "unknown age": lambda f: final_post(f, age="99"),
    "two ages": lambda f: final_post(f, age=["15-17", "18-20"]),
    "topic twice": lambda f: final_post(f, topic=["job", "job"]),
    "unknown step": lambda f: final_post(f, step="done"),
    "no step": lambda f: {k: v for k, v in final_post(f).items() if k != "step"},
    "bad flow id": lambda f: final_post(f, flow="x"),
    "first_visit missing": lambda f: {
        k: v for k, v in final_post(f).items() if k != "first_visit"
    },  # fmt: skip
    "bad first_visit": lambda f: final_post(f, first_visit="maybe"),
    "heard_from on the visit step": lambda f: final_post(f, heard_from="friends"),
    "heard_from for a returning visitor": lambda f: final_post(
        f, step="heard", first_visit="no", heard_from="friends"
    ),
    "unknown heard_from": lambda f: final_post(
        f, step="heard", first_visit="yes", heard_from="radio"
    ),
    "age missing": lambda f: {k: v for k, v in final_post(f).items() if k != "age"},
    "oversized post": lambda f: final_post(f, topic=["x" * 100_000]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_or_forged_posts_get_400_and_store_nothing(client, db, case):
    form = begin(client, "de")
    r = client.post("/de/checkin", data=BAD[case](form))
    assert r.status_code == 400
    assert "Hoppla" in r.get_data(as_text=True)  # the friendly screen with a way back
    assert rows(db) == [] and db.count("outbox") == 0
    # the same form, unchanged, is accepted: the 400 came from the forgery only
    assert client.post("/de/checkin", data=final_post(form)).status_code == 303
    assert len(rows(db)) == 1


def test_csrf_token_must_match_this_browsers_cookie(app, db):
    alice, mallory = app.test_client(), app.test_client()
    token_of_alice = begin(alice)
    begin(mallory)  # mallory has her own cookie
    r = mallory.post("/de/checkin", data=final_post(token_of_alice))
    assert r.status_code == 400
    no_cookie = app.test_client()
    assert no_cookie.post("/de/checkin", data=final_post(token_of_alice)).status_code == 400
    assert rows(db) == []


def test_cross_site_origin_is_refused(client, db):
    form = begin(client)
    r = client.post("/de/checkin", data=final_post(form),
                    headers={"Origin": "https://evil.example"})  # fmt: skip
    assert r.status_code == 400
    r = client.post("/de/checkin", data=final_post(form), headers={"Origin": "http://localhost"})
    assert r.status_code == 303
    assert len(rows(db)) == 1


def test_json_body_is_refused(client, db):
    begin(client)
    r = client.post("/de/checkin", json={"step": "visit", "age": "18-20", "first_visit": "no"})
    assert r.status_code == 400
    assert rows(db) == []


def test_the_only_cookie_is_the_csrf_token(client):
    r = client.get("/de/checkin")
    cookies = r.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    c = cookies[0]
    assert c.startswith("vanbox_csrf=") and "HttpOnly" in c and "SameSite=Strict" in c
    assert "Expires" not in c and "Max-Age" not in c  # ends with the browser session
    form = begin(client)
    r = client.post("/de/checkin", data=final_post(form))
    assert r.headers.getlist("Set-Cookie") == []
    assert client.get("/de/thanks").headers.getlist("Set-Cookie") == []


# --- repeated taps -------------------------------------------------------------------


def test_twenty_identical_posts_make_one_checkin(client, db, app):
    app.extensions[checkin.STATE_KEY].clock = clock = FakeClock()
    form = begin(client)
    for _ in range(20):
        r = client.post("/de/checkin", data=final_post(form))
        assert r.status_code == 303 and r.headers["Location"] == "/de/thanks"
        clock.t += 60  # even much later, the same flow counts once
    assert len(rows(db)) == 1 and db.count("outbox") == 1


def test_two_visitors_within_the_interval_are_two_checkins(client, db, app):
    guard = app.extensions[checkin.STATE_KEY]
    guard.clock = clock = FakeClock()
    assert guard.min_interval == 2.0  # kiosk.min_checkin_interval_s default
    first, second = begin(client), begin(client)  # two visitors' flows
    assert client.post("/de/checkin", data=final_post(first)).status_code == 303
    clock.t += 0.1  # the second finishes 0.1 s later: still a check-in of its own
    assert client.post("/de/checkin", data=final_post(second)).status_code == 303
    for _ in range(10):  # and their repeated taps still count once each
        client.post("/de/checkin", data=final_post(first))
        client.post("/de/checkin", data=final_post(second))
    assert len(rows(db)) == 2 and db.count("outbox") == 2


def test_interval_zero_counts_every_visitor(db):
    app = make_app(db, min_checkin_interval_s=0)
    client = app.test_client()
    for _ in range(5):
        client.post("/en/checkin", data=final_post(begin(client, "en")))
    assert len(rows(db)) == 5


# --- modes ---------------------------------------------------------------------------


def test_hub_mode_has_no_checkin(tmp_path):
    hub_store = Store(tmp_path / "hub.db", van="")
    try:
        app = create_app(config=default_config(), store=hub_store, mode="hub")
        assert not any(ep.startswith("checkin.") for ep in app.view_functions)
        client = app.test_client()
        assert client.get("/de/checkin").status_code == 404
        assert "Tippe auf deine Sprache" not in client.get("/").get_data(as_text=True)
        assert "babel" in app.extensions  # languages are still set up for the other pages
    finally:
        hub_store.close()


# --- privacy -------------------------------------------------------------------------


def test_no_client_address_or_user_agent_in_any_row_or_log_line(db, caplog, tmp_path):
    app = make_app(db)
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": IP, "HTTP_USER_AGENT": AGENT,
                                "HTTP_X_FORWARDED_FOR": FORWARDED})  # fmt: skip
    caplog.set_level(logging.DEBUG)
    form = begin(client, "ru")
    cookie = client.get_cookie("vanbox_csrf").value
    client.post("/ru/checkin", data={**form, "step": "age", "age": "25-27"})
    client.post("/ru/checkin", data=final_post(form, age="25-27"))
    client.post("/ru/checkin", data=final_post(form, csrf_token="forged"))  # a 400 too
    client.get("/ru/thanks")
    assert len(rows(db)) == 1

    dump = "\n".join(db.reader().iterdump())
    assert "25-27" in dump  # the check-in is in the dump we search
    lines = [rec.getMessage() for rec in caplog.records]
    lines += [str(rec.args) for rec in caplog.records]
    for secret in (IP, FORWARDED, AGENT, "ProbeAgent", cookie):
        assert secret not in dump
        assert not any(secret in line for line in lines), secret
    raw = b"".join(p.read_bytes() for p in Path(db.path).parent.glob("vanbox.db*"))
    for secret in (IP, FORWARDED, "ProbeAgent"):
        assert secret.encode() not in raw


def test_thank_you_screen_returns_to_the_start_sooner_than_the_idle_time(client):
    """The next visitor should find the start screen, not someone else's thank-you."""
    page = client.get("/de/thanks").get_data(as_text=True)
    assert 'data-idle-ms="10000"' in page
    assert 'data-idle-ms="60000"' in client.get("/de/checkin").get_data(as_text=True)
