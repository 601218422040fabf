"""Staff logins: the password file, lockout after failures, session timeout and CSRF.

The password file (``staff.passwd_file``, default ``/etc/vanbox/staff.passwd``) holds one
login per line::

    # comments and blank lines are ignored
    anna:scrypt:32768:8:1$kJd...$3f5a...
    ben:pbkdf2:sha256:1000000$Qe...$9c1d...

that is ``NAME:HASH``, split at the first colon. NAME is 1-64 letters, digits, ``.``,
``_`` or ``-`` (starting with a letter or digit); HASH is a werkzeug password hash
(``scrypt`` as made by ``vanbox passwd``, or ``pbkdf2``). The file is read again as soon
as it changes, so ``vanbox passwd`` takes effect without a restart; a changed password
or a deleted login also ends that person's open sessions.

Failures are counted per login name (known or not, compared case-insensitively) and
client address, in the database: ``staff.max_failures`` failures within
``staff.lockout_minutes`` lock that name for that client (see :class:`Lockout` for the
whole rule: backoff, the per-client limit over all names, bounded storage). A session
ends after ``staff.session_minutes`` without a request, or at logout. Sessions and
failures live in the database (migration 0007), so a restart keeps them and several
web processes share them. Every POST in the staff area must carry the session's CSRF
token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from telemetry.errors import VanboxError
from telemetry.stores import DB_ERRORS

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HASH_METHODS = ("scrypt", "pbkdf2")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
EXT_KEY = "vanbox_staff_auth"

# Session keys, prefixed so they cannot clash with the kiosk's own session data.
S_SID, S_CSRF = "staff_sid", "staff_csrf"
CSRF_FIELD = "csrf_token"


def clock() -> float:
    """Seconds since the epoch. Tests replace this to move time forward."""
    return time.time()


class PasswdError(VanboxError):
    """The staff password file or a name/password given for it is not usable."""


# --- names, passwords, hashes --------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise PasswdError(
            f"login name {name!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswdError(
            f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswdError(f"the password is too long; use at most {MAX_PASSWORD_LENGTH} characters")
    if password != password.strip() or any(c in password for c in "\r\n\0"):
        raise PasswdError("the password must not start or end with spaces or contain line breaks")
    return password


def hash_password(password: str) -> str:
    """A werkzeug scrypt hash of the password (salted, ``scrypt:N:r:p$salt$hash``)."""
    return generate_password_hash(check_password(password), method="scrypt")


def _hash_ok(h: str) -> bool:
    return h.split(":", 1)[0] in HASH_METHODS and h.count("$") == 2


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


# --- the password file ---------------------------------------------------------------


def parse_passwd(text: str, *, source: str = "passwd file", strict: bool = True) -> dict[str, str]:
    """``{name: hash}`` from the file's text. ``strict`` raises on a bad line; otherwise
    bad lines are logged and skipped (the web app keeps the good logins working)."""
    users: dict[str, str] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, hash_ = line.partition(":")
        why = ""
        if not sep or not NAME_RE.fullmatch(name):
            why = "expected NAME:HASH"
        elif not _hash_ok(hash_):
            why = "the hash is not a scrypt or pbkdf2 hash made by 'vanbox passwd'"
        elif name in users:
            why = f"{name!r} appears twice"
        if why:
            if strict:
                raise PasswdError(f"{source}, line {no}: {why}")
            log.warning("%s, line %d: %s; line ignored", source, no, why)
            continue
        users[name] = hash_
    return users


def read_passwd(path: str | Path, *, strict: bool = True) -> dict[str, str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise PasswdError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    return parse_passwd(text, source=str(path), strict=strict)


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replace the file atomically (temp file in the same folder, fsync, rename),
    keeping the old file's mode and owner; a new file is made readable by owner+group."""
    try:
        st = path.stat()
        mode, owner = st.st_mode & 0o777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o640, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise PasswdError(f"{path}: cannot write there ({e.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner is not None:
                try:
                    os.fchown(f.fileno(), *owner)
                except PermissionError:
                    pass
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PasswdError(f"{path}: cannot write ({e.strerror})") from None


def _file_lines(path: Path) -> list[str]:
    read_passwd(path, strict=True)  # refuse to rewrite a file we do not understand
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def set_user(path: str | Path, name: str, hash_: str) -> bool:
    """Add the login or change its hash, keeping other lines. True if it is new."""
    path = Path(path)
    check_name(name)
    if not _hash_ok(hash_):
        raise PasswdError("not a scrypt or pbkdf2 password hash")
    lines, found = [], False
    for line in _file_lines(path):
        if line.strip().partition(":")[0] == name and not line.lstrip().startswith("#"):
            line, found = f"{name}:{hash_}", True
        lines.append(line)
    if not found:
        lines.append(f"{name}:{hash_}")
    _rewrite(path, lines)
    return not found


def delete_user(path: str | Path, name: str) -> bool:
    """Remove the login. True if it was there."""
    path = Path(path)
    check_name(name)
    old = _file_lines(path)
    lines = [
        ln for ln in old if ln.lstrip().startswith("#") or ln.strip().partition(":")[0] != name
    ]
    if len(lines) == len(old):
        return False
    _rewrite(path, lines)
    return True


class Users:
    """The logins of the password file, read again whenever the file changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = ()
        self._users: dict[str, str] = {}

    def _current_stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def get(self, name: str) -> str | None:
        """The hash for this login, or None."""
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp:
                if stamp is None:
                    log.warning("staff password file %s is missing: nobody can log in", self.path)
                    self._users = {}
                else:
                    try:
                        self._users = read_passwd(self.path, strict=False)
                    except PasswdError as e:
                        log.error("%s; nobody can log in until it is fixed", e)
                        self._users = {}
                self._stamp = stamp
            return self._users.get(name)


# --- lockout ---------------------------------------------------------------------------

LOCK_BACKOFF_MAX = 8  # a lockout lasts lockout_minutes x 1, 2, 4, 8 for lockouts in a row
STRIKES_FORGOTTEN_S = 24 * 3600  # a day without failures and the backoff starts again
ALL_NAMES = "*"  # the row counting one client's failures over every name


class Lockout:
    """Failed logins, kept in the database (table ``staff_failures``) per login name
    *and* client address, so a restart keeps them and every web process shares them.

    The rule:

    - ``max_failures`` failures for one name from one client within ``window_s`` lock
      that name for that client for ``window_s``; each further lockout in a row doubles
      it, up to 8x. A success or a day without failures resets it.
    - One client failing ``names_factor x max_failures`` times over *any* names within
      ``window_s`` is locked for every name (no password spraying, no name flooding).
    - Somebody else's failures never lock a person out from their own address, and every
      lockout ends (at the latest ``8 x window_s`` after the last failure); so nobody
      can keep a name locked out for good.
    - Storage is bounded: at more than ``max_rows`` rows the oldest rows that are *not*
      locked are deleted; a live lockout is never deleted to make room, so flooding other
      names never lifts one.
    """

    MAX_ROWS = 20_000
    NAMES_FACTOR = 4

    def __init__(self, store, max_failures: int, window_s: float) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_rows = self.MAX_ROWS

    @staticmethod
    def key(name: str) -> str:
        return name.strip().lower()[:64]

    @staticmethod
    def client_key(client: str | None) -> str:
        return (client or "-")[:64]

    def locked_until(self, name: str, client: str | None, now: float) -> float | None:
        rows = (
            self.store.reader()
            .execute(
                "SELECT max(locked_until) FROM staff_failures"
                " WHERE client = ? AND name IN (?, ?) AND locked_until > ?",
                (self.client_key(client), self.key(name), ALL_NAMES, now),
            )
            .fetchone()
        )
        return rows[0] if rows and rows[0] is not None else None

    def _bump(self, conn, name: str, client: str, now: float, limit: int) -> None:
        row = conn.execute(
            "SELECT failures, first, last, locked_until, strikes FROM staff_failures"
            " WHERE name = ? AND client = ?",
            (name, client),
        ).fetchone()
        if row is None:
            failures, first, strikes, until = 0, now, 0, 0.0
        else:
            failures, first, last, until, strikes = row
            if now - first >= self.window_s:  # a new window
                failures, first = 0, now
            if now - last >= STRIKES_FORGOTTEN_S:
                strikes = 0
        failures += 1
        if failures >= limit and until <= now:
            until = now + self.window_s * min(LOCK_BACKOFF_MAX, 2**strikes)
            strikes, failures, first = strikes + 1, 0, now
        conn.execute(
            "INSERT INTO staff_failures"
            " (name, client, failures, first, last, locked_until, strikes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, client) DO UPDATE SET"
            " failures = excluded.failures, first = excluded.first, last = excluded.last,"
            " locked_until = excluded.locked_until, strikes = excluded.strikes",
            (name, client, failures, first, now, until, strikes),
        )

    def failure(self, name: str, client: str | None, now: float) -> None:
        client = self.client_key(client)
        try:
            with self.store.transaction() as conn:
                self._bump(conn, self.key(name), client, now, self.max_failures)
                self._bump(conn, ALL_NAMES, client, now, self.max_failures * self.NAMES_FACTOR)
                self._trim(conn, now)
        except DB_ERRORS as e:  # the database's health check reports it; log it here
            log.error("staff login: cannot count a failed login (%s)", e)

    def _trim(self, conn, now: float) -> None:
        # Forgotten after a day without failures (the backoff is reset by then anyway).
        conn.execute(
            "DELETE FROM staff_failures WHERE last < ? AND locked_until <= ?",
            (now - STRIKES_FORGOTTEN_S, now),
        )
        (n,) = conn.execute("SELECT count(*) FROM staff_failures").fetchone()
        if n <= self.max_rows:
            return
        # Old rows first: those whose window and backoff memory are over, then the
        # oldest unlocked ones. Never a row that is locked now.
        conn.execute(
            "DELETE FROM staff_failures WHERE rowid IN (SELECT rowid FROM staff_failures"
            " WHERE locked_until <= ? ORDER BY last LIMIT ?)",
            (now, n - self.max_rows),
        )

    def success(self, name: str, client: str | None) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM staff_failures WHERE name = ? AND client = ?",
                (self.key(name), self.client_key(client)),
            )

    def __len__(self) -> int:
        return self.store.reader().execute("SELECT count(*) FROM staff_failures").fetchone()[0]


# --- sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    user: str
    pwid: str
    seen: float


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    """Open staff sessions, kept in the database (table ``staff_sessions``): a restart
    keeps them and every web process on the database shares them. The browser's
    (signed) cookie carries only a random session id; the table holds its SHA-256, so
    a copy of the database logs nobody in. A logout or a timeout deletes the row, so an
    old copy of the cookie is worth nothing."""

    MAX_SESSIONS = 1000
    SEEN_EVERY_S = 10.0  # write "seen" at most this often per session (fewer writes)

    def __init__(self, store, timeout_s: float) -> None:
        self.store = store
        self.timeout_s = timeout_s

    def create(self, user: str, pwid: str, now: float) -> str:
        sid = secrets.token_urlsafe(32)
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM staff_sessions WHERE seen < ?", (now - self.timeout_s,))
            (n,) = conn.execute("SELECT count(*) FROM staff_sessions").fetchone()
            if n >= self.MAX_SESSIONS:  # the least recently used go
                conn.execute(
                    "DELETE FROM staff_sessions WHERE id_hash IN (SELECT id_hash FROM"
                    " staff_sessions ORDER BY seen LIMIT ?)",
                    (n - self.MAX_SESSIONS + 1,),
                )
            conn.execute(
                "INSERT INTO staff_sessions (id_hash, user, pwid, created, seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (_sid_hash(sid), user, pwid, now, now),
            )
        return sid

    def touch(self, sid: str, now: float, *, active: bool = True) -> tuple[_Session | None, str]:
        """The session and "" if it is valid (with ``active``, its idle time starts
        again); else (None, "expired") or (None, "") for an unknown id."""
        h = _sid_hash(sid)
        row = (
            self.store.reader()
            .execute("SELECT user, pwid, seen FROM staff_sessions WHERE id_hash = ?", (h,))
            .fetchone()
        )
        if row is None:
            return None, ""
        s = _Session(row[0], row[1], row[2])
        if now - s.seen > self.timeout_s or now < s.seen - 60:
            self.drop(sid)
            return None, "expired"
        if active and now - s.seen >= self.SEEN_EVERY_S:
            try:
                with self.store.transaction() as conn:
                    conn.execute(
                        "UPDATE staff_sessions SET seen = max(seen, ?) WHERE id_hash = ?",
                        (now, h),
                    )
            except DB_ERRORS as e:  # a full or read-only disk: reading goes on
                log.warning("staff session: cannot note the last request (%s)", e)
        return s, ""

    def drop(self, sid: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (_sid_hash(sid),))

    def __len__(self) -> int:
        return self.store.reader().execute("SELECT count(*) FROM staff_sessions").fetchone()[0]


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
