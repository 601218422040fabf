"""The public map's JavaScript in Chromium says counts and names as the server does:
``Intl.PluralRules`` picks the category Babel picks for every n in 0..10 000 in every
language, the counted texts come out the same strings, and a map page with a visit
delayed by 1 or 2 minutes reads the same with and without the script (the names in a
``<bdi>`` in Arabic)."""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path

import pytest
from babel import Locale
from werkzeug.serving import make_server

from kiosk.public_plural import FSI, PDI
from kiosk.public_text import LANGS, TEXT
from kiosk.timetable import Words
from telemetry.plan import PlanException, change_plan, new_id
from tests.kiosk.test_public_languages_browser import QuietHandler
from tests.kiosk.test_public_languages_browser import serve as serve_at  # noqa: F401

pytestmark = pytest.mark.browser

_spec = importlib.util.spec_from_file_location(
    "public_i18n_helpers_plural_browser", Path(__file__).with_name("test_public_i18n.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)  # type: ignore[union-attr]

NS = (0, 1, 2, 3, 5, 11, 21, 22, 25, 100, 101, 102)
KEYS = {  # each counted text with the other values it takes
    "minutes_ago": {},
    "hours_ago": {},
    "days_ago": {},
    "say_delayed": {"when": "Mo 14:30", "place": "Edemissen, Schulzentrum", "t": "14:31"},
    "note_delayed": {"t": "14:30"},
}
UPTO = 10_000


@pytest.fixture
def serve(serve_at):  # noqa: F811
    """``serve(delay_min=None)``: the hub (one van, open at the Markt at 11:00, see
    test_public_i18n.make_app) on a free port; today's 14:30 Schule visit delayed by
    ``delay_min`` minutes if given."""

    def start(delay_min: int | None = None) -> str:
        def delay(st) -> None:
            ex = PlanException(id=new_id(), kind="delay", date=helpers.MON.date(),
                               stop_key="schule", delay_min=delay_min)  # fmt: skip
            change_plan(st, "van-a", lambda p: p.with_exception(ex))

        return serve_at(helpers.local(11), setup=None if delay_min is None else delay)

    return start


def open_page(browser, url: str, *, js: bool = True):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE",
                              java_script_enabled=js)  # fmt: skip
    ctx.route(lambda u: not u.startswith("http://127.0.0.1"), lambda r: r.abort())
    page = ctx.new_page()
    page.goto(url)
    if js:
        page.wait_for_function("() => window.vanboxPublic && window.vanboxPublic.words")
    return ctx, page


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("plural")
    app, st = helpers.make_app(d, helpers.local(11))
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()
    st.close()


@pytest.mark.parametrize("lang", LANGS)
def test_script_counts_as_the_server_does(browser, module_server, lang):
    ctx, page = open_page(browser, f"{module_server}/?lang={lang}")
    try:
        # The category for every n up to UPTO: Intl.PluralRules against Babel.
        js = page.evaluate(f"Array.from({{length: {UPTO + 1}}}, (_, n) => "
                           "window.vanboxPublic.words.category(n))")  # fmt: skip
        rule = Locale.parse(lang).plural_form
        wrong = [(n, js[n], rule(n)) for n in range(UPTO + 1) if js[n] != rule(n)]
        assert wrong == [], wrong[:10]
        # The strings, for the chosen n: exactly the server's.
        words = Words(TEXT[lang], "2026-11-23")
        for key, vals in KEYS.items():
            said = page.evaluate(
                "([key, ns, vals]) => ns.map(n => window.vanboxPublic.words.counted(key, n, vals))",
                [key, list(NS), vals],
            )
            assert said == [words.counted(key, n, **vals) for n in NS], (lang, key)
            rtl = TEXT[lang]["dir"] == "rtl"
            assert all(s.count(FSI) == s.count(PDI) for s in said)
            assert any(FSI in s for s in said) == rtl, (lang, key)  # isolates right to left only
    finally:
        ctx.close()


def delayed_note(browser, url: str, js: bool) -> tuple[str, list[str], str]:
    """The delayed line's note, every list line's HTML and the open stop's HTML."""
    ctx, page = open_page(browser, url, js=js)
    try:
        if js:
            page.wait_for_function("() => window.vanboxPublic.polls >= 1")
        note = page.locator("li.st-delayed .note").inner_text()
        lines = page.locator("ul.next li").evaluate_all("ls => ls.map(l => l.innerHTML)")
        where = page.locator("article.van .where").inner_html()
        return note, lines, where
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("minutes", "want"),
    [
        (1, {"de": "Verspätet um 1 Minute (statt 14:30 Uhr).",
             "ru": "Задержка на 1 минуту (вместо 14:30).",
             "uk": "Затримка на 1 хвилину (замість 14:30).",
             "ar": f"تأخير دقيقة واحدة (بدلًا من الساعة {FSI}١٤:٣٠{PDI}).",
             "en": "Delayed by 1 minute (was 14:30)."}),
        (2, {"de": "Verspätet um 2 Minuten (statt 14:30 Uhr).",
             "ru": "Задержка на 2 минуты (вместо 14:30).",
             "uk": "Затримка на 2 хвилини (замість 14:30).",
             "ar": f"تأخير دقيقتين (بدلًا من الساعة {FSI}١٤:٣٠{PDI}).",
             "en": "Delayed by 2 minutes (was 14:30)."}),
    ],
)  # fmt: skip
def test_a_delayed_visit_reads_the_same_with_and_without_the_script(browser, serve, minutes,
                                                                   want):  # fmt: skip
    base = serve(delay_min=minutes)
    for lang, text in want.items():
        url = f"{base}/?view=list&lang={lang}"
        server, script = delayed_note(browser, url, False), delayed_note(browser, url, True)
        assert server[0] == script[0] == text, lang
        assert server[1] == script[1], lang  # every line, markup and all
        assert server[2] == script[2], lang
        if lang == "ar":
            assert any("<bdi>Edemissen, Schulzentrum</bdi>" in li for li in script[1])
            assert "<strong><bdi>Peine, Marktplatz</bdi></strong>" in script[2]
        else:
            assert not any(re.search("<bdi>|\u2068", li) for li in script[1])
