"""The database and the disk under it: ``vanbox doctor``'s checks and the box's start.

:func:`check_disk` and :func:`check_database` are ``vanbox doctor``'s findings.
:func:`explain_error` turns an SQLite error of the running box (read-only remount,
corrupt file, I/O error) into one line that says what is wrong and how to fix it;
:func:`open_problem` does the same for a database the box cannot open at its start, so
``vanbox run`` prints that line instead of a traceback.
"""

from __future__ import annotations

import os
import pwd
import sqlite3
from pathlib import Path

from telemetry.config import Config

from .doctor_checks import DISK_FAIL_MB, DISK_WARN_MB, FAIL, OK, WARN, Finding, Probes

# --- what is wrong with a database, in one line ------------------------------------------


def mount_point(p: Path) -> Path:
    """The mount point of the filesystem that holds ``p`` (or its nearest parent)."""
    p = _existing_parent(p)
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def read_only(path: Path) -> bool:
    """True when the filesystem holding ``path`` is mounted read-only."""
    try:
        return bool(os.statvfs(_existing_parent(path)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_only_message(path: Path) -> str:
    where = mount_point(Path(path).parent)
    return (
        f"database {path} is read-only: remount the data partition rw "
        f"(sudo mount -o remount,rw {where}), then restart the box"
    )


def corrupt_message(path: Path) -> str:
    return (
        f"database file {path} is corrupt: stop the box, move the file aside "
        f"(mv {path} {path}.corrupt; also its -wal and -shm files) and restore it from a "
        "backup, or start without it: the box creates a new one"
    )


def explain_error(e: BaseException, path: Path | str) -> str:
    """One line for an SQLite error of the store at ``path``: what and how to fix it."""
    path = Path(path)
    name = (getattr(e, "sqlite_errorname", "") or "").upper()
    text = str(e).lower()
    if "READONLY" in name or "readonly" in text or "read-only" in text or read_only(path):
        return read_only_message(path)
    if "FULL" in name or "disk is full" in text or disk_full(path):
        return (
            f"the disk holding {path} is full: free space (sudo journalctl --vacuum-size=50M; "
            "sudo apt-get clean; vanbox prune), then restart the box"
        )
    if "CORRUPT" in name or "NOTADB" in name or "malformed" in text or "not a database" in text:
        return corrupt_message(path)
    if "IOERR" in name or "disk i/o error" in text:
        return (
            f"database {path}: I/O error ({e}): the SD card or USB disk may be failing; "
            "run `vanbox doctor`, check `dmesg`, and copy the file off the card"
        )
    if "CANTOPEN" in name or "unable to open" in text:
        return (
            f"database {path} cannot be opened ({e}): check that {path.parent} exists and "
            "belongs to the vanbox user (sudo chown -R vanbox: " + str(path.parent) + ")"
        )
    return f"database {path} cannot be written: {e}"


def open_problem(path: Path | str) -> str | None:
    """Why the box cannot use the database at ``path`` (one line), or ``None``: a
    read-only partition, a file that is not SQLite or fails its quick check."""
    path = Path(path)
    if str(path) == ":memory:":
        return None
    if read_only(path):
        return read_only_message(path)
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        if disk_full(path):
            return None  # sqlite could not make its -shm file: the box runs on a full disk
        return explain_error(e, path)
    if rows != ["ok"]:
        first = " ".join(rows[0].split())[:200]
        return corrupt_message(path) + f" (quick check: {first})"
    return None


def disk_full(path: Path, below_bytes: int = 1 << 20) -> bool:
    """True when the filesystem of ``path`` has less than ``below_bytes`` free."""
    import shutil

    try:
        return shutil.disk_usage(_existing_parent(path)).free < below_bytes
    except OSError:
        return False


# --- vanbox doctor ------------------------------------------------------------------------


def _existing_parent(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_disk(cfg: Config, probes: Probes) -> Finding:
    db = Path(cfg.database["path"])
    where = _existing_parent(db.parent)
    try:
        free_mb = probes.disk_usage(str(where)).free / 1e6
    except OSError as e:
        return Finding("disk", FAIL, f"cannot measure free space at {where}: {e}", "")
    msg = f"{free_mb:,.0f} MB free at {where}"
    fix = (
        "free space: sudo journalctl --vacuum-size=50M; sudo apt-get clean; "
        "`vanbox prune`; or use a bigger SD card"
    )
    if free_mb < DISK_FAIL_MB:
        return Finding(
            "disk", FAIL, f"{msg} (under {DISK_FAIL_MB} MB: the box will stop recording)", fix
        )
    if free_mb < DISK_WARN_MB:
        return Finding("disk", WARN, f"{msg} (under {DISK_WARN_MB} MB)", fix)
    return Finding("disk", OK, msg)


def check_database(cfg: Config, probes: Probes) -> Finding:
    path = Path(cfg.database["path"])
    if not path.exists():
        if not path.parent.is_dir():
            return Finding(
                "database",
                WARN,
                f"{path.parent} does not exist",
                "run deploy/install.sh (it creates /var/lib/vanbox) or fix database.path",
            )
        return Finding(
            "database", OK, f"{path} not created yet; the box creates it at its first start"
        )
    if read_only(path):
        where = mount_point(path.parent)
        return Finding(
            "database",
            FAIL,
            f"database {path} is read-only: the partition {where} is mounted read-only, so "
            "the box cannot store anything",
            f"remount the data partition rw: sudo mount -o remount,rw {where} (and check "
            "`dmesg` for why it went read-only), then sudo systemctl restart vanbox",
        )
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as e:
        return Finding(
            "database", FAIL, f"{path}: cannot open ({e})", "check the file's owner (vanbox)"
        )
    fix = (
        "stop the box (sudo systemctl stop vanbox), keep a copy of the file, then recover: "
        f"sqlite3 {path} '.recover' | sqlite3 {path}.recovered && mv {path}.recovered {path}; "
        "sudo chown vanbox: the file; start the box. Or move the file aside (with its -wal "
        "and -shm) and restore it from a backup; without a file the box creates a new one"
    )
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
    except sqlite3.DatabaseError as e:
        return Finding(
            "database", FAIL, f"database file {path} is corrupt: not a readable SQLite "
            f"database ({e})", fix,
        )  # fmt: skip
    finally:
        conn.close()
    if rows != ["ok"]:
        return Finding(
            "database", FAIL, f"database file {path} is corrupt: integrity check failed: "
            f"{'; '.join(rows[:3])}", fix,
        )  # fmt: skip
    if mode != "wal":
        return Finding(
            "database",
            WARN,
            f"{path}: integrity ok, but journal_mode is {mode}, not wal",
            "start the box once: it switches the file to WAL",
        )
    wrong = _not_owned_by(probes.service_user, [path.parent, path, *_wal_files(path)])
    if wrong:
        u = probes.service_user
        return Finding(
            "database",
            FAIL,
            f"{path}: integrity ok, but {', '.join(wrong)} not owned by {u}: the box cannot "
            "write (was vanbox started by hand as root?)",
            f"sudo chown -R {u}: {path.parent}",
        )
    size = path.stat().st_size / 1e6
    return Finding("database", OK, f"{path}: integrity ok, WAL mode, {size:,.1f} MB")


def _wal_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in ("-wal", "-shm")]


def _not_owned_by(user: str, paths: list[Path]) -> list[str]:
    """The paths (that exist) not owned by ``user``; none when the user does not exist."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    return [str(p) for p in paths if p.exists() and p.stat().st_uid != uid]
