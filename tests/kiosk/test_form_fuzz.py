"""Hypothesis fuzzing of the HTTP forms with Flask's test client (issue 12 point 7/8):
the check-in post, the staff login, the staff area's query strings and its forms.

For every input: never a 500; a bad post is a 400 (or 401/429 at the login) and stores
nothing; and the next good check-in is still stored. Fuzz counts: see FUZZ below
(inputs per boundary per run).
"""

from __future__ import annotations

import re
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from kiosk import auth, checkin, create_app
from kiosk.auth import set_user
from telemetry import categories
from telemetry.config import default_config
from telemetry.store import Store

FUZZ = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip
PASSWORD = "fuzz-passwort-1"
GOOD_CODES = [*categories.AGE_GROUPS, *categories.TOPICS, *categories.HEARD_FROM, "yes", "no",
              "unsaid", "skip", "age", "topics", "visit", "heard"]  # fmt: skip
FIELDS = ["age", "topic", "first_visit", "heard_from", "step", "flow", "csrf_token"]

nasty_text = st.one_of(
    st.sampled_from(GOOD_CODES),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=8).map(lambda s: s * 200),
    st.sampled_from(["", " ", "\x00", "18-20\x00", "../../etc", "job\njob", "%00", "\ud7ff",
                     "18-20 ", "JOB", "ＪＯＢ", "-1", "1e400", "<script>", "' OR 1=1--"]),
)  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    passwd = tmp / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd), "max_failures": 5},
                          "kiosk": {"min_checkin_interval_s": 0}})  # fmt: skip
    store = Store(tmp / "box.db", van="jr-1")
    app = create_app({"TESTING": True}, config=cfg, store=store)
    yield app, store
    store.close()


def count(store: Store, table: str) -> int:
    return store.reader().execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def begin(client) -> dict[str, str]:
    html = client.get("/de/checkin").get_data(as_text=True)
    return {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1),
        "flow": re.search(r'name="flow" value="([^"]+)"', html).group(1),
    }


def good_checkin(client, store: Store) -> None:
    before = count(store, "checkins")
    data = {**begin(client), "step": "visit", "age": "18-20", "topic": ["job"],
            "first_visit": "no"}  # fmt: skip
    r = client.post("/de/checkin", data=data)
    assert r.status_code == 303, r.status_code
    assert count(store, "checkins") == before + 1


@st.composite
def checkin_forms(draw) -> list[tuple[str, str]]:
    """A mostly valid final post with a few fields changed, added, doubled or dropped."""
    base = [("step", "visit"), ("age", "18-20"), ("topic", "job"), ("first_visit", "no")]
    if draw(st.booleans()):
        base = [("step", "heard"), ("age", "15-17"), ("first_visit", "yes"),
                ("heard_from", categories.HEARD_FROM[0])]  # fmt: skip
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "add", "drop", "dup"]))
        if op == "set" and base:
            i = draw(st.integers(0, len(base) - 1))
            base[i] = (base[i][0], draw(nasty_text))
        elif op == "add":
            base.append((draw(st.one_of(st.sampled_from(FIELDS), st.text(max_size=10))),
                         draw(nasty_text)))  # fmt: skip
        elif op == "drop" and base:
            base.pop(draw(st.integers(0, len(base) - 1)))
        elif op == "dup" and base:
            base.append(base[draw(st.integers(0, len(base) - 1))])
    return base


@FUZZ
@given(form=checkin_forms(), token=st.sampled_from(["ok", "missing", "wrong", "twice"]),
       flow=st.sampled_from(["ok", "missing", "short", "nasty"]))  # fmt: skip
def test_fuzz_checkin_post(env, form, token, flow):
    app, store = env
    c = app.test_client()
    hidden = begin(c)
    fields = list(form)
    if token != "missing":
        fields.append(("csrf_token", "x" * 64 if token == "wrong" else hidden["csrf_token"]))
    if token == "twice":
        fields.append(("csrf_token", hidden["csrf_token"]))
    fields.append(("flow", {"ok": hidden["flow"], "short": "abc", "nasty": "a\x00" * 20,
                            "missing": None}[flow]))  # fmt: skip
    fields = [(k, v) for k, v in fields if v is not None]
    body = urllib.parse.urlencode(fields, encoding="utf-8", errors="surrogatepass")
    before = count(store, "checkins")
    r = c.post("/de/checkin", data=body, content_type="application/x-www-form-urlencoded")
    after = count(store, "checkins")
    assert r.status_code in (200, 303, 400), r.status_code
    assert after - before == (1 if r.status_code == 303 else 0)
    if r.status_code == 400:
        assert "text/html" in r.content_type
    good_checkin(c, store)


@FUZZ
@given(body=st.binary(max_size=400),
       ctype=st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data",
                              "multipart/form-data; boundary=x", "application/json",
                              "text/plain", ""]))  # fmt: skip
def test_fuzz_checkin_raw_bodies(env, body, ctype):
    app, store = env
    c = app.test_client()
    begin(c)  # the browser has its CSRF cookie
    before = count(store, "checkins")
    r = c.post("/de/checkin", data=body, content_type=ctype or None)
    assert r.status_code == 400, r.status_code
    assert count(store, "checkins") == before
    good_checkin(c, store)


@FUZZ
@given(name=nasty_text, password=st.one_of(nasty_text, st.just(PASSWORD)), next_=nasty_text,
       extra=st.lists(st.tuples(st.text(max_size=8), nasty_text), max_size=3),
       token=st.sampled_from(["ok", "missing", "wrong"]))  # fmt: skip
def test_fuzz_staff_login(env, monkeypatch, name, password, next_, extra, token):
    app, store = env
    cheap = generate_password_hash("x" * 16, method="pbkdf2:sha256:1000")
    monkeypatch.setattr(auth, "_dummy_hash", lambda: cheap)  # unknown names: no scrypt
    store._conn.execute("DELETE FROM staff_failures")  # each example starts unlocked
    c = app.test_client()
    page = c.get("/staff/login")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    fields = [("name", name), ("password", password), ("next", next_), *extra]
    if token != "missing":
        fields.append(("csrf_token", tok if token == "ok" else "nope"))
    body = urllib.parse.urlencode(fields, encoding="utf-8", errors="surrogatepass")
    sessions = count(store, "staff_sessions")
    r = c.post("/staff/login", data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code in (302, 400, 401, 413, 429), r.status_code
    if r.status_code == 302:
        assert name.strip() == "anna" and password == PASSWORD and token == "ok"
        assert r.headers["Location"].startswith("/staff")
        assert count(store, "staff_sessions") == sessions + 1
    else:
        assert count(store, "staff_sessions") == sessions  # nothing stored
    good_checkin(app.test_client(), store)


@pytest.fixture(scope="module")
def staff_client(env):
    app, _ = env
    c = app.test_client()
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/staff/login").text).group(1)
    assert c.post("/staff/login", data={"name": "anna", "password": PASSWORD,
                                        "csrf_token": tok}).status_code == 302  # fmt: skip
    return c


STAFF_GETS = ["/staff/reports/{n}", "/staff/reports/{n}.svg", "/staff/export/{n}.csv",
              "/staff/export/{n}.xlsx", "/staff/annual", "/staff/annual.csv",
              "/staff/annual.xlsx", "/staff/today/tiles", "/staff/"]  # fmt: skip
REPORTS = ["summary", "stops", "hours", "topics", "quality", "x", "..", "summary\x00"]


QUERY_KEYS = st.sampled_from(["p", "d", "van", "year", "public", "auto", "x", "why"])


@FUZZ
@given(
    path=st.sampled_from(STAFF_GETS),
    name=st.one_of(st.sampled_from(REPORTS), nasty_text),
    params=st.lists(st.tuples(QUERY_KEYS, nasty_text), max_size=4),
)
def test_fuzz_staff_query_strings(env, staff_client, path, name, params):
    app, store = env
    url = path.format(n=urllib.parse.quote(name, safe="", errors="surrogatepass"))
    qs = urllib.parse.urlencode(params, errors="surrogatepass")
    r = staff_client.get(url + ("?" + qs if qs else ""))
    assert r.status_code in (200, 302, 400, 404), (url, qs, r.status_code)


@FUZZ
@given(
    fields=st.lists(
        st.tuples(st.one_of(st.sampled_from(["csrf_token", "x"]), st.text(max_size=8)), nasty_text),
        max_size=4,
    )
)
def test_fuzz_staff_logout_form(env, staff_client, fields):
    """A staff POST without the session's token is a 400 and ends nothing."""
    app, store = env
    body = urllib.parse.urlencode(fields, errors="surrogatepass")
    sessions = count(store, "staff_sessions")
    r = staff_client.post("/staff/logout", data=body,
                          content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert r.status_code == 400
    assert count(store, "staff_sessions") == sessions
    assert staff_client.get("/staff/").status_code == 200  # still logged in


def test_guard_constants_are_what_the_fuzzing_assumes():
    assert checkin.FLOW_RE.match("a" * 16) and not checkin.FLOW_RE.match("a" * 15)


@pytest.mark.parametrize("tok", ["\x80", "ä" * 64, "€", "\ud800"])
def test_non_ascii_csrf_token_is_a_400_not_a_500(env, tok):
    """Found by the fuzzing: hmac.compare_digest refuses non-ASCII str (was a 500)."""
    app, store = env
    c = app.test_client()
    form = {**begin(c), "step": "visit", "age": "18-20", "first_visit": "no"}
    form["csrf_token"] = tok
    body = urllib.parse.urlencode(form, errors="surrogatepass")
    before = count(store, "checkins")
    r = c.post("/de/checkin", data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and count(store, "checkins") == before
    c.get("/staff/login")
    body = urllib.parse.urlencode({"name": "anna", "password": PASSWORD, "csrf_token": tok},
                                  errors="surrogatepass")  # fmt: skip
    r = c.post("/staff/login", data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400
    good_checkin(c, store)
