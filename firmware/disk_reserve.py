"""A small reserve file beside the database, so the box can start on a full disk.

SQLite needs a little room to open a WAL database (its ``-shm`` index, the first WAL
frames). The box keeps :data:`RESERVE_BYTES` in ``.vanbox-reserve`` next to the
database while there is space; when the disk is full at start, the reserve is given
back, the store opens, and events wait in memory as they do when the disk fills while
the box runs. The reserve is made again once there is room.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("vanbox.box")

RESERVE_NAME = ".vanbox-reserve"
RESERVE_BYTES = 2 << 20  # 2 MiB: the -shm file and a few hundred WAL frames
KEEP_FREE_BYTES = 16 << 20  # make the reserve only while this much more is free


def reserve_path(db: str | Path) -> Path:
    return Path(db).absolute().parent / RESERVE_NAME


def release(db: str | Path) -> bool:
    """Give the reserve back to the disk; True if there was one."""
    p = reserve_path(db)
    try:
        p.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        log.warning("cannot remove the disk reserve %s: %s", p, e)
        return False
    log.warning("the disk is full: gave back the %d KiB reserve %s", RESERVE_BYTES >> 10, p)
    return True


def ensure(db: str | Path) -> bool:
    """Make the reserve if it is missing and the disk has room; True if it exists."""
    p = reserve_path(db)
    if str(db) == ":memory:":
        return False
    try:
        if p.exists() and p.stat().st_size >= RESERVE_BYTES:
            return True
        if shutil.disk_usage(p.parent).free < RESERVE_BYTES + KEEP_FREE_BYTES:
            return False
        with open(p, "wb") as fh:  # real blocks, not a sparse file
            fh.write(b"\0" * RESERVE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    except OSError as e:
        log.warning("cannot make the disk reserve %s: %s", p, e)
        try:
            p.unlink()
        except OSError:
            pass
        return False
