"""Counted texts in every language (CLDR plural categories through Babel) and isolated
names in right-to-left text, on the server: the words, the map page, the timetable, the
JSON and the calendar. The page's JavaScript is checked against these in
``test_public_plural_browser.py``."""

from __future__ import annotations

import importlib.util
import re
from datetime import timedelta
from pathlib import Path

import pytest
from babel import Locale

from kiosk.public import Formatter
from kiosk.public_plural import COUNTED, FSI, PDI, category, fill, form, isolate
from kiosk.public_text import LANGS, TEXT
from kiosk.timetable import Words
from telemetry.plan import PlanException, change_plan, new_id

_spec = importlib.util.spec_from_file_location(
    "public_i18n_helpers_plural", Path(__file__).with_name("test_public_i18n.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)  # type: ignore[union-attr]

NS = (0, 1, 2, 3, 5, 11, 21, 22, 25, 100, 101, 102)
COUNTED_KEYS = ("minutes_ago", "hours_ago", "days_ago", "say_delayed", "note_delayed")
PLACE = "Edemissen, Schulzentrum"
VISIT = {"name": PLACE, "municipality": "Edemissen", "start": "2026-11-23T14:31+01:00",
         "end": "2026-11-23T18:00+01:00", "planned_start": "2026-11-23T14:30+01:00",
         "status": "delayed", "reason": None}  # fmt: skip


def delayed(lang: str, n: int, *, in_list: bool = True) -> str:
    return Words(TEXT[lang], "2026-11-23", in_list=in_list).note({**VISIT, "delay_min": n})


# --- the forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_every_category_the_language_needs(lang):
    """Each counted text has a form for every category CLDR gives an n in 0..200, and
    none it never uses ("other" always: fractions, a fallback); each form has the same
    placeholders, {n} left out only where the category is a single number (Arabic's
    "دقيقة واحدة", "دقيقتين": the word says the number)."""
    rule = Locale.parse(lang).plural_form
    needed: dict[str, set[int]] = {}
    for n in range(0, 1001):
        needed.setdefault(rule(n), set()).add(n)
    within = {rule(n) for n in range(0, 201)}
    counted = {k for k, v in TEXT[lang].items() if isinstance(v, dict)}
    assert counted == set(COUNTED_KEYS) == set(COUNTED[lang])
    for key in COUNTED_KEYS:
        forms = TEXT[lang][key]
        assert within <= set(forms) <= within | {"other"}, (lang, key, sorted(forms))
        want = set(re.findall(r"{(\w+)}", forms["other"]))
        assert "n" in want
        for cat, f in forms.items():
            got = set(re.findall(r"{(\w+)}", f))
            assert got == want or (got == want - {"n"} and len(needed[cat]) == 1), (lang, key, cat)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("key", COUNTED_KEYS)
def test_the_form_is_the_one_babel_names(lang, key):
    words = Words(TEXT[lang], "2026-11-23")
    rule = Locale.parse(lang).plural_form
    for n in NS:
        assert category(lang, n) == rule(n)
        vals = {k: "X" for k in re.findall(r"{(\w+)}", TEXT[lang][key]["other"]) if k != "n"}
        want = fill(TEXT[lang], TEXT[lang][key][rule(n)], n=words.num(n), **vals)
        assert words.counted(key, n, **vals) == want, (lang, key, n)


@pytest.mark.parametrize(
    ("lang", "n", "want"),
    [
        ("de", 0, "Verspätet um 0 Minuten (statt 14:30 Uhr)."),
        ("de", 1, "Verspätet um 1 Minute (statt 14:30 Uhr)."),
        ("de", 2, "Verspätet um 2 Minuten (statt 14:30 Uhr)."),
        ("de", 21, "Verspätet um 21 Minuten (statt 14:30 Uhr)."),
        ("en", 1, "Delayed by 1 minute (was 14:30)."),
        ("en", 2, "Delayed by 2 minutes (was 14:30)."),
        ("tr", 1, "1 dakika gecikmeli (planlanan: 14:30)."),
        ("tr", 5, "5 dakika gecikmeli (planlanan: 14:30)."),
        ("ru", 1, "Задержка на 1 минуту (вместо 14:30)."),
        ("ru", 2, "Задержка на 2 минуты (вместо 14:30)."),
        ("ru", 5, "Задержка на 5 минут (вместо 14:30)."),
        ("ru", 11, "Задержка на 11 минут (вместо 14:30)."),
        ("ru", 21, "Задержка на 21 минуту (вместо 14:30)."),
        ("ru", 22, "Задержка на 22 минуты (вместо 14:30)."),
        ("ru", 25, "Задержка на 25 минут (вместо 14:30)."),
        ("ru", 101, "Задержка на 101 минуту (вместо 14:30)."),
        ("uk", 1, "Затримка на 1 хвилину (замість 14:30)."),
        ("uk", 3, "Затримка на 3 хвилини (замість 14:30)."),
        ("uk", 5, "Затримка на 5 хвилин (замість 14:30)."),
        ("uk", 21, "Затримка на 21 хвилину (замість 14:30)."),
        ("ar", 1, f"تأخير دقيقة واحدة (بدلًا من الساعة {FSI}١٤:٣٠{PDI})."),
        ("ar", 2, f"تأخير دقيقتين (بدلًا من الساعة {FSI}١٤:٣٠{PDI})."),
        ("ar", 3, f"تأخير {FSI}٣{PDI} دقائق (بدلًا من الساعة {FSI}١٤:٣٠{PDI})."),
        ("ar", 10, f"تأخير {FSI}١٠{PDI} دقائق (بدلًا من الساعة {FSI}١٤:٣٠{PDI})."),
        ("ar", 11, f"تأخير {FSI}١١{PDI} دقيقة (بدلًا من الساعة {FSI}١٤:٣٠{PDI})."),
        ("ar", 100, f"تأخير {FSI}١٠٠{PDI} دقيقة (بدلًا من الساعة {FSI}١٤:٣٠{PDI})."),
        ("fa", 1, f"{FSI}۱{PDI} دقیقه تأخیر (به‌جای {FSI}۱۴:۳۰{PDI})."),
        ("fa", 2, f"{FSI}۲{PDI} دقیقه تأخیر (به‌جای {FSI}۱۴:۳۰{PDI})."),
    ],
)
def test_a_delay_in_words(lang, n, want):
    assert delayed(lang, n) == want


def test_a_delay_as_a_whole_sentence():
    """The calendar's words: German, no isolates."""
    assert delayed("de", 1, in_list=False) == (
        "Heute 14:30 Edemissen, Schulzentrum verspätet sich um 1 Minute (ab 14:31 Uhr)."
    )
    assert "um 2 Minuten" in delayed("de", 2, in_list=False)
    assert "на 21 минуту" in delayed("ru", 21, in_list=False)
    assert "на 2 хвилини" in delayed("uk", 2, in_list=False)
    ar = delayed("ar", 2, in_list=False)
    assert f"{FSI}{PLACE}{PDI}: تأخير دقيقتين" in ar


def ago(lang: str, minutes: int) -> str:
    now = helpers.MON
    f = Formatter(TEXT[lang], "2026-11-23", now)
    return f.ago((now - timedelta(minutes=minutes, seconds=5)).isoformat())


@pytest.mark.parametrize(
    ("lang", "minutes", "want"),
    [
        ("de", 0, "gerade eben"),
        ("de", 1, "vor 1 Minute"),
        ("de", 2, "vor 2 Minuten"),
        ("de", 59, "vor 59 Minuten"),
        ("de", 60, "vor 1 Stunde"),
        ("de", 120, "vor 2 Stunden"),
        ("de", 47 * 60 + 59, "vor 47 Stunden"),
        ("de", 48 * 60, "vor 2 Tagen"),
        ("en", 1, "1 minute ago"),
        ("en", 60, "1 hour ago"),
        ("en", 3 * 24 * 60, "3 days ago"),
        ("ru", 1, "1 минуту назад"),
        ("ru", 2, "2 минуты назад"),
        ("ru", 5, "5 минут назад"),
        ("ru", 21, "21 минуту назад"),
        ("ru", 22 * 60, "22 часа назад"),
        ("ru", 21 * 24 * 60, "21 день назад"),
        ("uk", 21, "21 хвилину тому"),
        ("uk", 25 * 60, "25 годин тому"),
        ("uk", 2 * 24 * 60, "2 дні тому"),
        ("ar", 1, "قبل دقيقة"),
        ("ar", 2, "قبل دقيقتين"),
        ("ar", 3, f"قبل {FSI}٣{PDI} دقائق"),
        ("ar", 11, f"قبل {FSI}١١{PDI} دقيقة"),
        ("ar", 120, "قبل ساعتين"),
        ("ar", 11 * 24 * 60, f"قبل {FSI}١١{PDI} يومًا"),
        ("fa", 1, f"{FSI}۱{PDI} دقیقه پیش"),
        ("tr", 2, "2 dakika önce"),
    ],
)
def test_ago_in_words(lang, minutes, want):
    assert ago(lang, minutes) == want


# --- isolation ----------------------------------------------------------------------------


def test_isolates_only_right_to_left():
    assert isolate("Peine", True) == f"{FSI}Peine{PDI}" and isolate(5, False) == "5"
    for lang in LANGS:
        words = Words(TEXT[lang], "2026-11-23")
        said = words.next_stop({"start": "2026-11-24T10:00+01:00", "name": PLACE})
        rtl = TEXT[lang]["dir"] == "rtl"
        assert (f"{FSI}{PLACE}{PDI}" in said) == rtl, (lang, said)
        assert (FSI in said or PDI in said) == rtl, (lang, said)
        assert said.count(FSI) == said.count(PDI)
        assert str(words.bdi("<b>")) == ("<bdi>&lt;b&gt;</bdi>" if rtl else "<b>")
    de = Words(TEXT["de"], "2026-11-23")
    assert de.next_stop({"start": "2026-11-24T10:00+01:00", "name": PLACE}) == (
        "Nächster Halt: morgen 10:00 Uhr, Edemissen, Schulzentrum"
    )


@pytest.fixture
def app_at(tmp_path):
    made = []

    def make(now, **kw):
        d = tmp_path / str(len(made))
        d.mkdir()
        app, st = helpers.make_app(d, now, **kw)
        made.append(st)
        return app, st

    yield make
    for st in made:
        st.close()


def delay(st, minutes: int) -> None:
    """Delay today's 14:30 Schule visit by ``minutes``."""
    ex = PlanException(id=new_id(), kind="delay", date=helpers.MON.date(), stop_key="schule",
                       delay_min=minutes, reason="Stau")  # fmt: skip
    change_plan(st, "van-a", lambda p: p.with_exception(ex))


def note_of(page: str) -> str:
    return re.search(r'<li class="st-delayed[^"]*">.*?<span class="note">(.*?)</span>', page)[1]


@pytest.mark.parametrize("minutes", [1, 2])
def test_map_and_timetable_pages_say_the_delay(app_at, minutes):
    app, st = app_at(helpers.local(11))
    delay(st, minutes)
    c = app.test_client()
    for path in ("/?lang=de", "/timetable?lang=de"):
        want = "Minute" if minutes == 1 else "Minuten"
        assert note_of(c.get(path).get_data(as_text=True)) == (
            f"Verspätet um {minutes} {want} (statt 14:30 Uhr). Grund: Stau"
        )
    ru = note_of(c.get("/?lang=ru").get_data(as_text=True))
    assert ru.startswith(f"Задержка на {minutes} {'минуту' if minutes == 1 else 'минуты'} ")
    ar = note_of(c.get("/?lang=ar").get_data(as_text=True))
    assert ar.startswith("تأخير دقيقة واحدة" if minutes == 1 else "تأخير دقيقتين")


def test_arabic_page_names_are_isolated(app_at):
    app, st = app_at(helpers.local(11))
    delay(st, 20)
    c = app.test_client()
    ar = c.get("/?lang=ar").get_data(as_text=True)
    assert f'<span class="stop"><bdi>{PLACE}</bdi></span>' in ar
    assert (
        '<strong><bdi>Peine, Marktplatz</bdi></strong> <span class="muni">(<bdi>Peine</bdi>)' in ar
    )
    assert "<h2><a " in ar and ">Bus Nord</bdi></a></h2>" in ar
    assert f"السبب: {FSI}Stau{PDI}" in ar
    one = c.get("/van/van-a?lang=fa").get_data(as_text=True)
    assert f"<title>{fill(TEXT['fa'], TEXT['fa']['title_one'], name='Bus Nord')}</title>" in one
    assert f"{FSI}Bus Nord{PDI} کجاست؟" in one
    tt = c.get("/van/van-a/timetable?lang=ar").get_data(as_text=True)
    assert f"{FSI}Bus Nord{PDI}" in tt and f"<bdi>{PLACE}</bdi>" in tt
    assert "<bdi>Peine, Marktplatz</bdi>" in tt


def test_german_and_english_pages_have_no_isolates(app_at):
    """Left to right nothing changes: no <bdi>, no isolates, the very words as before."""
    app, st = app_at(helpers.local(11))
    delay(st, 20)
    c = app.test_client()
    for lang in ("de", "en", "tr", "uk", "ru"):
        for path in ("/", "/van/van-a", "/timetable", "/van/van-a/timetable"):
            page = c.get(f"{path}?lang={lang}").get_data(as_text=True)
            assert "<bdi>" not in page and FSI not in page and PDI not in page, (lang, path)
    de = c.get("/?lang=de").get_data(as_text=True)
    assert f'<span class="stop">{PLACE}</span>' in de
    assert '<strong>Peine, Marktplatz</strong> <span class="muni">(Peine)</span>' in de
    assert "<h1>Wo ist der Bus?</h1>" in de
    assert "Verspätet um 20 Minuten (statt 14:30 Uhr). Grund: Stau" in de
    assert "seit 10:00 Uhr · bis 13:00 Uhr" in de


def test_json_has_plain_names_and_the_calendar_plain_german(app_at):
    """The API carries the data, not words: its names are as stored. The calendar's
    German words have no isolates, and a 1-minute delay is "1 Minute"."""
    app, st = app_at(helpers.local(11))
    delay(st, 1)
    c = app.test_client()
    data = c.get("/api/public/vans").get_json()
    assert PLACE in {n["name"] for n in data["vans"][0]["next"]}
    body = c.get("/calendar.ics").get_data()
    assert FSI.encode() not in body and PDI.encode() not in body
    text = body.decode().replace("\r\n ", "")
    assert "verspätet sich um 1 Minute (ab 14:31 Uhr). Grund: Stau" in text
    assert "um 1 Minuten" not in text


def test_form_falls_back_to_other():
    assert form({"one": "a", "other": "b"}, "ar", 2) == "b"
    assert form({"one": "a", "other": "b"}, "de", 1) == "a"
