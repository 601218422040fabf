"""Staff logins: checking a login, the session it opens, timeouts and CSRF (the Flask side).

The parts live in their own modules and are importable from here as well:

- :mod:`kiosk.auth_passwd`: the password file (``staff.passwd_file``, one ``NAME:HASH``
  line per login), name and password rules, hashes. The file is read again as soon as
  it changes, so ``vanbox passwd`` takes effect without a restart; a changed password
  or a deleted login also ends that person's open sessions.
- :mod:`kiosk.auth_lockout`: failures are counted per login name (known or not,
  compared case-insensitively) and client address, in the database:
  ``staff.max_failures`` failures within ``staff.lockout_minutes`` lock that name for
  that client (see :class:`Lockout` for the whole rule: backoff, the per-client limit
  over all names, bounded storage).
- :mod:`kiosk.auth_sessions`: a session ends after ``staff.session_minutes`` without a
  request, or at logout.

Sessions and failures live in the database (migration 0007), so a restart keeps them and
several web processes share them. Every POST in the staff area must carry the session's
CSRF token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from flask import current_app, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from .auth_lockout import ALL_NAMES as ALL_NAMES
from .auth_lockout import LOCK_BACKOFF_MAX as LOCK_BACKOFF_MAX
from .auth_lockout import STRIKES_FORGOTTEN_S as STRIKES_FORGOTTEN_S
from .auth_lockout import Lockout as Lockout
from .auth_passwd import HASH_METHODS as HASH_METHODS
from .auth_passwd import MAX_PASSWORD_LENGTH as MAX_PASSWORD_LENGTH
from .auth_passwd import MIN_PASSWORD_LENGTH as MIN_PASSWORD_LENGTH
from .auth_passwd import NAME_RE as NAME_RE
from .auth_passwd import PasswdError as PasswdError
from .auth_passwd import Users as Users
from .auth_passwd import check_name as check_name
from .auth_passwd import check_password as check_password
from .auth_passwd import delete_user as delete_user
from .auth_passwd import hash_password as hash_password
from .auth_passwd import parse_passwd as parse_passwd
from .auth_passwd import read_passwd as read_passwd
from .auth_passwd import set_user as set_user
from .auth_sessions import Sessions as Sessions

EXT_KEY = "vanbox_staff_auth"

# Session keys, prefixed so they cannot clash with the kiosk's own session data.
S_SID, S_CSRF = "staff_sid", "staff_csrf"
CSRF_FIELD = "csrf_token"


def clock() -> float:
    """Seconds since the epoch. Tests replace this to move time forward."""
    return time.time()


# --- checking a password ---------------------------------------------------------------


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password: unknown names cost as much time as known ones."""
    return generate_password_hash(secrets.token_hex(16), method="scrypt")


def verify_password(hash_: str | None, password: str) -> bool:
    if not hash_:
        check_password_hash(_dummy_hash(), password)
        return False
    try:
        return check_password_hash(hash_, password)
    except (ValueError, TypeError):  # a malformed hash in the file never logs anybody in
        return False


# --- Flask glue ------------------------------------------------------------------------


@dataclass
class StaffAuth:
    users: Users
    lockout: Lockout
    sessions: Sessions


def init_app(app, staff_cfg: dict) -> StaffAuth:
    store = app.extensions["vanbox_store"]
    auth = StaffAuth(
        users=Users(staff_cfg["passwd_file"]),
        lockout=Lockout(store, staff_cfg["max_failures"], staff_cfg["lockout_minutes"] * 60.0),
        sessions=Sessions(store, staff_cfg["session_minutes"] * 60.0),
    )
    app.extensions[EXT_KEY] = auth
    return auth


def get_auth() -> StaffAuth:
    return current_app.extensions[EXT_KEY]


def client_address() -> str:
    """The client's address (behind hub.trusted_proxy: the one the proxy saw)."""
    return request.remote_addr or "-"


def _pwid(hash_: str) -> str:
    """A short fingerprint of the login's hash: a new password ends old sessions."""
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, hash_.encode(), hashlib.sha256).hexdigest()[:16]


def csrf_token() -> str:
    tok = session.get(S_CSRF)
    if not tok:
        tok = session[S_CSRF] = secrets.token_urlsafe(32)
    return tok


def csrf_ok(sent: str | None) -> bool:
    tok = session.get(S_CSRF)
    return bool(tok and sent and hmac.compare_digest(tok.encode(), sent.encode()))


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    locked_until: float | None = None


def attempt_login(name: str, password: str) -> LoginResult:
    """Check the name and password against the lockout and the file; on success a new
    session starts for this login (new session id, new CSRF token)."""
    auth = get_auth()
    now = clock()
    client = client_address()
    until = auth.lockout.locked_until(name, client, now)
    if until is not None:
        return LoginResult(False, until)
    hash_ = auth.users.get(name) if NAME_RE.fullmatch(name or "") else None
    if not verify_password(hash_, password):
        auth.lockout.failure(name, client, now)
        return LoginResult(False, auth.lockout.locked_until(name, client, now))
    auth.lockout.success(name, client)
    logout()
    session[S_SID] = auth.sessions.create(name, _pwid(hash_), now)
    session[S_CSRF] = secrets.token_urlsafe(32)
    return LoginResult(True)


def logout() -> None:
    sid = session.pop(S_SID, None)
    if sid:
        get_auth().sessions.drop(sid)
    session.pop(S_CSRF, None)


def current_user(*, active: bool = True) -> tuple[str | None, str]:
    """(login name or None, why not: "" | "expired" | "changed"). With ``active`` (a
    person's request, not a page refreshing itself) the idle time starts again."""
    sid = session.get(S_SID)
    if not sid:
        return None, ""
    auth = get_auth()
    s, why = auth.sessions.touch(sid, clock(), active=active)
    if s is None:
        logout()
        return None, why
    hash_ = auth.users.get(s.user)
    if hash_ is None or not hmac.compare_digest(s.pwid, _pwid(hash_)):
        logout()
        return None, "changed"
    return s.user, ""
