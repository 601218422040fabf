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

Failures are counted per login name (known or not, compared case-insensitively) in the
memory of the web process: ``staff.max_failures`` failures within
``staff.lockout_minutes`` lock that name for ``staff.lockout_minutes`` after the last
failure; a restart forgets them. A session ends after ``staff.session_minutes`` without a
request (sessions live in the web process's memory: logging out, a timeout or a restart
ends them for good). Every POST in the staff area must carry the session's CSRF token.
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
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, session
from werkzeug.security import check_password_hash, generate_password_hash

from telemetry.errors import VanboxError

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


class Lockout:
    """Failed logins per name: ``max_failures`` within ``window_s`` lock the name until
    ``window_s`` after the last failure. Bounded memory (oldest names forgotten first)."""

    MAX_NAMES = 10_000

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._fails: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(name: str) -> str:
        return name.strip().lower()[:64]

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._fails.get(key, ()) if now - t < self.window_s]
        if times:
            self._fails[key] = times
        else:
            self._fails.pop(key, None)
        return times

    def locked_until(self, name: str, now: float) -> float | None:
        with self._lock:
            times = self._recent(self.key(name), now)
            if len(times) >= self.max_failures:
                return times[-1] + self.window_s
            return None

    def failure(self, name: str, now: float) -> None:
        key = self.key(name)
        with self._lock:
            times = self._recent(key, now)
            times.append(now)
            self._fails[key] = times[-self.max_failures :]
            self._fails.move_to_end(key)
            while len(self._fails) > self.MAX_NAMES:
                self._fails.popitem(last=False)

    def success(self, name: str) -> None:
        with self._lock:
            self._fails.pop(self.key(name), None)


# --- sessions --------------------------------------------------------------------------


@dataclass
class _Session:
    user: str
    pwid: str
    seen: float


class Sessions:
    """Open staff sessions, kept in the web process's memory. The browser's (signed)
    cookie only carries a random session id, so a logout or a timeout ends the session
    for good: an old copy of the cookie is worth nothing. A restart logs everybody out."""

    MAX_SESSIONS = 1000

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._open: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, pwid: str, now: float) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            for k in [k for k, v in self._open.items() if now - v.seen > self.timeout_s]:
                del self._open[k]
            while len(self._open) >= self.MAX_SESSIONS:  # the least recently used goes
                del self._open[min(self._open, key=lambda k: self._open[k].seen)]
            self._open[sid] = _Session(user, pwid, now)
        return sid

    def touch(self, sid: str, now: float, *, active: bool = True) -> tuple[_Session | None, str]:
        """The session and "" if it is valid (with ``active``, its idle time starts
        again); else (None, "expired") or (None, "") for an unknown id."""
        with self._lock:
            s = self._open.get(sid)
            if s is None:
                return None, ""
            if now - s.seen > self.timeout_s or now < s.seen - 60:
                del self._open[sid]
                return None, "expired"
            if active:
                s.seen = now
            return s, ""

    def drop(self, sid: str) -> None:
        with self._lock:
            self._open.pop(sid, None)

    def __len__(self) -> int:
        return len(self._open)


# --- Flask glue ------------------------------------------------------------------------


@dataclass
class StaffAuth:
    users: Users
    lockout: Lockout
    sessions: Sessions


def init_app(app, staff_cfg: dict) -> StaffAuth:
    auth = StaffAuth(
        users=Users(staff_cfg["passwd_file"]),
        lockout=Lockout(staff_cfg["max_failures"], staff_cfg["lockout_minutes"] * 60.0),
        sessions=Sessions(staff_cfg["session_minutes"] * 60.0),
    )
    app.extensions[EXT_KEY] = auth
    return auth


def get_auth() -> StaffAuth:
    return current_app.extensions[EXT_KEY]


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
    until = auth.lockout.locked_until(name, now)
    if until is not None:
        return LoginResult(False, until)
    hash_ = auth.users.get(name) if NAME_RE.fullmatch(name or "") else None
    if not verify_password(hash_, password):
        auth.lockout.failure(name, now)
        return LoginResult(False, auth.lockout.locked_until(name, now))
    auth.lockout.success(name)
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
