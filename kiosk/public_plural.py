"""Counted texts and right-to-left isolation for the public pages' words
(:mod:`kiosk.public_text`).

A text that takes a count ``{n}`` has one form per CLDR plural category its language
needs (:data:`COUNTED`): German, English, Turkish and Farsi "one" and "other" (Turkish
and Farsi keep the singular after a number, and Farsi's "one" is 0 and 1), Russian and
Ukrainian "one" (1, 21, 31, ...: "1 минуту", "21 минуту"), "few" (2-4, 22-24, ...:
"2 минуты") and "many" (0, 5-20, 25-30, ...: "5 минут"), plus "other" for fractions,
Arabic "zero", "one", "two" (the dual: "دقيقتين"), "few" (3-10: "دقائق"), "many" (11-99:
the singular "دقيقة") and "other" (100-102, ...). The server picks the form with Babel
(:func:`category`), the page's JavaScript with ``Intl.PluralRules``: both follow CLDR.

In a right-to-left language every value put into a sentence (a place, a van's name, a
reason, a time, a count) is isolated with U+2068 FIRST STRONG ISOLATE ... U+2069 POP
DIRECTIONAL ISOLATE (:func:`fill`), so that a Latin name's punctuation and the numbers
next to it are not reordered; left-to-right languages get the plain text.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from babel import Locale

FSI, PDI = "\u2068", "\u2069"

Forms = dict[str, str]

COUNTED: dict[str, dict[str, Forms]] = {
    "de": {
        "minutes_ago": {"one": "vor {n} Minute", "other": "vor {n} Minuten"},
        "hours_ago": {"one": "vor {n} Stunde", "other": "vor {n} Stunden"},
        "days_ago": {"one": "vor {n} Tag", "other": "vor {n} Tagen"},
        "say_delayed": {
            "one": "{when} {place} verspätet sich um {n} Minute (ab {t} Uhr).",
            "other": "{when} {place} verspätet sich um {n} Minuten (ab {t} Uhr).",
        },
        "note_delayed": {
            "one": "Verspätet um {n} Minute (statt {t} Uhr).",
            "other": "Verspätet um {n} Minuten (statt {t} Uhr).",
        },
    },
    "en": {
        "minutes_ago": {"one": "{n} minute ago", "other": "{n} minutes ago"},
        "hours_ago": {"one": "{n} hour ago", "other": "{n} hours ago"},
        "days_ago": {"one": "{n} day ago", "other": "{n} days ago"},
        "say_delayed": {
            "one": "{when} {place} is delayed by {n} minute (from {t}).",
            "other": "{when} {place} is delayed by {n} minutes (from {t}).",
        },
        "note_delayed": {
            "one": "Delayed by {n} minute (was {t}).",
            "other": "Delayed by {n} minutes (was {t}).",
        },
    },
    "tr": {  # the singular after a number
        "minutes_ago": {"one": "{n} dakika önce", "other": "{n} dakika önce"},
        "hours_ago": {"one": "{n} saat önce", "other": "{n} saat önce"},
        "days_ago": {"one": "{n} gün önce", "other": "{n} gün önce"},
        "say_delayed": {
            "one": "{when} {place} {n} dakika gecikiyor (saat {t} itibarıyla).",
            "other": "{when} {place} {n} dakika gecikiyor (saat {t} itibarıyla).",
        },
        "note_delayed": {
            "one": "{n} dakika gecikmeli (planlanan: {t}).",
            "other": "{n} dakika gecikmeli (planlanan: {t}).",
        },
    },
    "ar": {  # 1 and 2 say the number in the word (the dual); 11-99 the singular
        "minutes_ago": {
            "zero": "قبل {n} دقيقة",
            "one": "قبل دقيقة",
            "two": "قبل دقيقتين",
            "few": "قبل {n} دقائق",
            "many": "قبل {n} دقيقة",
            "other": "قبل {n} دقيقة",
        },
        "hours_ago": {
            "zero": "قبل {n} ساعة",
            "one": "قبل ساعة",
            "two": "قبل ساعتين",
            "few": "قبل {n} ساعات",
            "many": "قبل {n} ساعة",
            "other": "قبل {n} ساعة",
        },
        "days_ago": {
            "zero": "قبل {n} يوم",
            "one": "قبل يوم",
            "two": "قبل يومين",
            "few": "قبل {n} أيام",
            "many": "قبل {n} يومًا",
            "other": "قبل {n} يوم",
        },
        "say_delayed": {
            "zero": "{when} {place}: تأخير {n} دقيقة (من الساعة {t}).",
            "one": "{when} {place}: تأخير دقيقة واحدة (من الساعة {t}).",
            "two": "{when} {place}: تأخير دقيقتين (من الساعة {t}).",
            "few": "{when} {place}: تأخير {n} دقائق (من الساعة {t}).",
            "many": "{when} {place}: تأخير {n} دقيقة (من الساعة {t}).",
            "other": "{when} {place}: تأخير {n} دقيقة (من الساعة {t}).",
        },
        "note_delayed": {
            "zero": "تأخير {n} دقيقة (بدلًا من الساعة {t}).",
            "one": "تأخير دقيقة واحدة (بدلًا من الساعة {t}).",
            "two": "تأخير دقيقتين (بدلًا من الساعة {t}).",
            "few": "تأخير {n} دقائق (بدلًا من الساعة {t}).",
            "many": "تأخير {n} دقيقة (بدلًا من الساعة {t}).",
            "other": "تأخير {n} دقيقة (بدلًا من الساعة {t}).",
        },
    },
    "uk": {  # the accusative after "на"; "other" is for fractions only
        "minutes_ago": {
            "one": "{n} хвилину тому",
            "few": "{n} хвилини тому",
            "many": "{n} хвилин тому",
            "other": "{n} хвилини тому",
        },
        "hours_ago": {
            "one": "{n} годину тому",
            "few": "{n} години тому",
            "many": "{n} годин тому",
            "other": "{n} години тому",
        },
        "days_ago": {
            "one": "{n} день тому",
            "few": "{n} дні тому",
            "many": "{n} днів тому",
            "other": "{n} дня тому",
        },
        "say_delayed": {
            "one": "{when} {place} затримується на {n} хвилину (з {t}).",
            "few": "{when} {place} затримується на {n} хвилини (з {t}).",
            "many": "{when} {place} затримується на {n} хвилин (з {t}).",
            "other": "{when} {place} затримується на {n} хвилини (з {t}).",
        },
        "note_delayed": {
            "one": "Затримка на {n} хвилину (замість {t}).",
            "few": "Затримка на {n} хвилини (замість {t}).",
            "many": "Затримка на {n} хвилин (замість {t}).",
            "other": "Затримка на {n} хвилини (замість {t}).",
        },
    },
    "ru": {  # the accusative after "на"; "other" is for fractions only
        "minutes_ago": {
            "one": "{n} минуту назад",
            "few": "{n} минуты назад",
            "many": "{n} минут назад",
            "other": "{n} минуты назад",
        },
        "hours_ago": {
            "one": "{n} час назад",
            "few": "{n} часа назад",
            "many": "{n} часов назад",
            "other": "{n} часа назад",
        },
        "days_ago": {
            "one": "{n} день назад",
            "few": "{n} дня назад",
            "many": "{n} дней назад",
            "other": "{n} дня назад",
        },
        "say_delayed": {
            "one": "{when} {place} задерживается на {n} минуту (с {t}).",
            "few": "{when} {place} задерживается на {n} минуты (с {t}).",
            "many": "{when} {place} задерживается на {n} минут (с {t}).",
            "other": "{when} {place} задерживается на {n} минуты (с {t}).",
        },
        "note_delayed": {
            "one": "Задержка на {n} минуту (вместо {t}).",
            "few": "Задержка на {n} минуты (вместо {t}).",
            "many": "Задержка на {n} минут (вместо {t}).",
            "other": "Задержка на {n} минуты (вместо {t}).",
        },
    },
    "fa": {  # the singular after a number
        "minutes_ago": {"one": "{n} دقیقه پیش", "other": "{n} دقیقه پیش"},
        "hours_ago": {"one": "{n} ساعت پیش", "other": "{n} ساعت پیش"},
        "days_ago": {"one": "{n} روز پیش", "other": "{n} روز پیش"},
        "say_delayed": {
            "one": "{when} {place} {n} دقیقه تأخیر دارد (از {t}).",
            "other": "{when} {place} {n} دقیقه تأخیر دارد (از {t}).",
        },
        "note_delayed": {
            "one": "{n} دقیقه تأخیر (به‌جای {t}).",
            "other": "{n} دقیقه تأخیر (به‌جای {t}).",
        },
    },
}


@cache
def _rule(lang: str):
    return Locale.parse(lang).plural_form


def category(lang: str, n: int) -> str:
    """The CLDR plural category of ``n`` in ``lang``: "zero", "one", "two", "few",
    "many" or "other" (what ``Intl.PluralRules(lang).select(n)`` says in the browser)."""
    return _rule(lang)(n)


def form(forms: Forms, lang: str, n: int) -> str:
    """The form of a counted text for ``n`` (its "other" form if it lacks the category)."""
    return forms.get(category(lang, n), forms["other"])


def isolate(value: object, rtl: bool) -> str:
    """``value`` as text, between FSI and PDI in a right-to-left language."""
    s = str(value)
    return f"{FSI}{s}{PDI}" if rtl else s


def fill(t: dict[str, Any], template: str, /, **values: object) -> str:
    """``template`` with ``values`` put in, each isolated if ``t``'s language is written
    right to left (see the module)."""
    rtl = t.get("dir") == "rtl"
    return template.format(**{k: isolate(v, rtl) for k, v in values.items()})
