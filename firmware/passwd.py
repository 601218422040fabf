"""``vanbox passwd USER``: add a staff login, change its password, or delete it.

The password is read twice from the terminal (not echoed), or as one line from standard
input when that is not a terminal (for scripts: ``echo "$PW" | vanbox passwd anna``).
The hash (werkzeug scrypt) goes into ``staff.passwd_file`` of the config, or the file
given with ``--passwd-file``; the web app picks the change up without a restart.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from kiosk.auth import PasswdError, check_name, delete_user, hash_password, set_user
from telemetry.config import DEFAULT_PATH, default_config, load_config


def add_arguments(parser) -> None:
    parser.add_argument("user", metavar="USER", help="the login name (letters, digits, . _ -)")
    parser.add_argument(
        "--config", metavar="PATH", help=f"config file (default {DEFAULT_PATH} if it exists)"
    )
    parser.add_argument(
        "--passwd-file", metavar="PATH", help="password file (default: staff.passwd_file)"
    )
    parser.add_argument("--delete", action="store_true", help="delete the login")


def passwd_path(args) -> Path:
    if args.passwd_file:
        return Path(args.passwd_file)
    if args.config:
        cfg = load_config(args.config)
    elif DEFAULT_PATH.exists():
        cfg = load_config(DEFAULT_PATH)
    else:
        cfg = default_config()
    return Path(cfg.staff["passwd_file"])


def read_password(user: str, stdin=None) -> str:
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass(f"New password for {user}: ")
        second = getpass.getpass("Repeat the password: ")
        if first != second:
            raise PasswdError("the two passwords differ; nothing was changed")
        return first
    line = stdin.readline()
    if not line:
        raise PasswdError("no password on standard input; nothing was changed")
    return line.rstrip("\r\n")


def run(args) -> int:
    check_name(args.user)
    path = passwd_path(args)
    if args.delete:
        if not delete_user(path, args.user):
            raise PasswdError(f"{path}: there is no login {args.user!r}")
        print(f"deleted login {args.user!r} from {path}")
        return 0
    hash_ = hash_password(read_password(args.user))
    new = set_user(path, args.user, hash_)
    if new:
        print(f"added login {args.user!r} to {path}")
    else:
        print(f"changed the password of {args.user!r} in {path}")
    return 0
