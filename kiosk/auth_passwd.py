"""The staff password file: login names, password rules, hashes, and reading and
rewriting the file (used by the web app's login and by ``vanbox passwd``).

The file (``staff.passwd_file``, default ``/etc/vanbox/staff.passwd``) holds one login
per line::

    # comments and blank lines are ignored
    anna:scrypt:32768:8:1$kJd...$3f5a...
    ben:pbkdf2:sha256:1000000$Qe...$9c1d...

that is ``NAME:HASH``, split at the first colon. NAME is 1-64 letters, digits, ``.``,
``_`` or ``-`` (starting with a letter or digit); HASH is a werkzeug password hash
(``scrypt`` as made by ``vanbox passwd``, or ``pbkdf2``). :class:`Users` reads the file
again as soon as it changes, so ``vanbox passwd`` takes effect without a restart.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path

from werkzeug.security import generate_password_hash

from telemetry.errors import VanboxError

log = logging.getLogger("kiosk.auth")  # the staff login's log, whichever module writes

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HASH_METHODS = ("scrypt", "pbkdf2")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


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
