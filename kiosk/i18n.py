"""Languages of the kiosk: which exist, how they are written, and Flask-Babel's setup.

The language is part of the URL (``/<lang>/...``); without one it is German. There is no
language cookie and no ``Accept-Language`` sniffing: the touchscreen is shared, and each
visitor picks their own language on the start screen.

``init_babel(app)`` is idempotent, so every feature module may call it. A view that
wants another locale than the URL's can set ``g.vanbox_locale`` before rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, get_locale

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
DEFAULT = "de"
DOMAIN = "messages"


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # the language's own name, as its speakers write it
    rtl: bool = False

    @property
    def dir(self) -> str:
        return "rtl" if self.rtl else "ltr"


# German first; the order of the buttons on the start screen.
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("de", "Deutsch"),
        Language("en", "English"),
        Language("tr", "Türkçe"),
        Language("ar", "العربية", rtl=True),
        Language("uk", "Українська"),
        Language("ru", "Русский"),
        Language("fa", "فارسی", rtl=True),
    )
}
EXTENSION_KEY = "vanbox_languages"


def has_catalog(code: str) -> bool:
    return (TRANSLATIONS_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()


def enabled_languages(configured: list[str]) -> list[Language]:
    """The configured languages the kiosk can show (known and translated), in config order.
    German is always there and first."""
    out = [LANGUAGES[DEFAULT]]
    for code in configured:
        if code != DEFAULT and code in LANGUAGES and has_catalog(code):
            if LANGUAGES[code] not in out:
                out.append(LANGUAGES[code])
    return out


def languages() -> list[Language]:
    """The languages enabled in the current app."""
    return current_app.extensions.get(EXTENSION_KEY) or [LANGUAGES[DEFAULT]]


def select_locale() -> str:
    """Flask-Babel's locale selector: ``g.vanbox_locale``, else the URL's ``lang``, else de."""
    if not has_request_context():
        return DEFAULT
    code = g.get("vanbox_locale") or (request.view_args or {}).get("lang")
    if code and any(lang.code == code for lang in languages()):
        return code
    return DEFAULT


def current() -> Language:
    return LANGUAGES.get(str(get_locale()), LANGUAGES[DEFAULT])


def init_babel(app: Flask) -> None:
    """Register Flask-Babel on ``app`` once (later calls do nothing)."""
    if "babel" in app.extensions:
        return
    cfg = app.extensions.get("vanbox_config")
    configured = list(cfg.kiosk["languages"]) if cfg else [DEFAULT]
    app.extensions[EXTENSION_KEY] = enabled_languages(configured)
    missing = [c for c in configured if c not in LANGUAGES or not has_catalog(c)]
    if missing:
        app.logger.warning(
            "kiosk.languages: no translation for %s; the check-in offers %s",
            ", ".join(missing), ", ".join(lang.code for lang in app.extensions[EXTENSION_KEY]),
        )  # fmt: skip
    Babel(
        app,
        default_locale=DEFAULT,
        default_translation_directories=str(TRANSLATIONS_DIR),
        default_timezone=cfg.timezone if cfg else "Europe/Berlin",
        locale_selector=select_locale,
    )

    @app.context_processor
    def _language_context() -> dict:
        lang = current()
        return {"html_lang": lang.code, "html_dir": lang.dir, "kiosk_languages": languages()}
