"""CSRF protection without a session: a signed double-submit token.

The browser holds one random value in the cookie ``vanbox_csrf`` (HttpOnly,
SameSite=Strict, no expiry, the only cookie the check-in sets). Every form carries
``csrf_token`` = HMAC-SHA256(app secret, cookie value). A post is accepted only if both
are there and match, and its ``Origin`` (when the browser sends one) is this server.

The cookie value is random and says nothing about the visitor; it is never stored.

Usage: ``protect(bp)`` on a blueprint makes every POST/PUT/PATCH/DELETE to it checked
and gives its templates ``{{ csrf_field() }}``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, request
from markupsafe import Markup

COOKIE = "vanbox_csrf"
FIELD = "csrf_token"
_RAW = re.compile(r"[A-Za-z0-9_-]{32,64}\Z")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _sign(raw: str) -> str:
    key = str(current_app.secret_key or "").encode()
    if not key:
        raise RuntimeError("CSRF protection needs app.secret_key")
    return hmac.new(key, b"vanbox-csrf\0" + raw.encode(), hashlib.sha256).hexdigest()


def _cookie_value() -> str | None:
    raw = request.cookies.get(COOKIE, "")
    return raw if _RAW.match(raw) else None


def token() -> str:
    """The form value for this browser; sets the cookie on the response if it has none."""
    raw = g.get("_csrf_raw") or _cookie_value()
    if raw is None:
        raw = secrets.token_urlsafe(32)
        g._csrf_new = True
    g._csrf_raw = raw
    return _sign(raw)


def field() -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, token())


def valid() -> bool:
    """Does the current request carry a matching cookie and form token from this origin?"""
    origin = request.headers.get("Origin")
    if origin is not None:
        o, h = urlsplit(origin), urlsplit(request.host_url)
        if (o.scheme, o.netloc) != (h.scheme, h.netloc):
            return False
    raw = _cookie_value()
    sent = request.form.get(FIELD, "")
    if raw is None or not sent or len(request.form.getlist(FIELD)) != 1:
        return False
    # as bytes: compare_digest refuses str with non-ASCII characters (a 500 before)
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), _sign(raw).encode())


def _check() -> None:
    if request.method in UNSAFE and not valid():
        abort(400)


def _secure() -> bool:
    """``Secure`` over HTTPS, or always with ``kiosk.cookie_secure`` (see create_app)."""
    return request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE"))


def _set_cookie(resp: Response) -> Response:
    if g.get("_csrf_new"):
        resp.set_cookie(
            COOKIE, g._csrf_raw, httponly=True, samesite="Strict", secure=_secure(),
            path="/",
        )  # fmt: skip
    return resp


def protect(bp: Blueprint) -> None:
    bp.before_request(_check)
    bp.after_request(_set_cookie)
    bp.context_processor(lambda: {"csrf_field": field, "csrf_token": token})
