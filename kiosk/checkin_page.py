"""The frame every check-in screen is rendered in (:func:`_page`), the locale's own
digits, the QR code to the public map and the plan version the start page watches."""

from __future__ import annotations

from functools import lru_cache

import segno
from babel import Locale
from flask import current_app, render_template, request, url_for
from flask_babel import get_locale

from telemetry.plan import stored_version

from . import appctx, i18n
from .checkin_form import STEP_TOTAL

HEARTBEAT_KEY = "VANBOX_HEARTBEAT_S"  # Flask config: seconds between heartbeats (default 10)


# --- locale digits -------------------------------------------------------------------

# The digits of the numbering systems CLDR names as a kiosk language's default (Babel
# knows which system a locale uses, but formats every system with Latin digits).
_DIGITS = {"arab": "٠١٢٣٤٥٦٧٨٩", "arabext": "۰۱۲۳۴۵۶۷۸۹"}


@lru_cache(maxsize=16)
def _digit_table(locale: str) -> dict[int, str]:
    digits = _DIGITS.get(Locale.parse(locale).default_numbering_system)
    return str.maketrans("0123456789", digits) if digits else {}


def digits(text: object) -> str:
    """``text`` with its digits in the current locale's own (Persian digits in Farsi)."""
    return str(text).translate(_digit_table(str(get_locale())))


# --- the start screen's link to the map ----------------------------------------------


def _map_url() -> str:
    return appctx.config().kiosk["public_map_url"] or request.url_root.rstrip("/") + "/map"


@lru_cache(maxsize=8)
def _qr_svg(url: str) -> str:
    qr = segno.make(url, error="m")
    return qr.svg_inline(scale=4, border=2, dark="#000", light="#fff", omitsize=True)


# --- the page frame ------------------------------------------------------------------


def _page(template: str, **ctx) -> str:
    cfg = appctx.config()
    lang = i18n.current()
    ctx.setdefault("home_url", url_for("checkin.start"))
    ctx.setdefault("idle_s", int(cfg.kiosk["idle_seconds"]))
    ctx.setdefault("plan_version", plan_version())
    return render_template(
        template,
        van_name=cfg.van["name"],
        lang=lang,
        heartbeat_s=float(current_app.config.get(HEARTBEAT_KEY, 10)),
        digits=digits,
        step_total=STEP_TOTAL,
        sw_url=url_for("checkin.service_worker"),
        **ctx,
    )


def plan_version() -> int:
    """The version of the van's newest stored plan (0: the TOML tour). The start page
    carries it, the heartbeat reports it, and the page reloads when they differ, so a
    cancelled stop shows on the touchscreen within one heartbeat."""
    try:
        return stored_version(appctx.store().reader(), appctx.config().van["id"])
    except Exception:  # noqa: BLE001 - an old schema or a broken file: no plan known
        return 0
