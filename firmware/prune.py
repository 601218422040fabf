"""``vanbox prune``: the daily retention job.

Folds every complete day into the daily aggregates, then deletes positions, footfall
events and check-ins older than ``database.retention_days`` (default 400). The reports
keep working for pruned days from the aggregates. ``--dry-run`` only says what would be
deleted. ``--hub`` prunes the hub's database (``hub.database``) instead of the box's.
Run daily by the systemd timer; safe to run at any time and more than once.
"""

from __future__ import annotations

from pathlib import Path

from telemetry.config import load_config
from telemetry.errors import VanboxError
from telemetry.events import utcnow
from telemetry.retention import prune
from telemetry.stores import is_url, open_store


def add_arguments(parser) -> None:
    parser.add_argument("--config", default="/etc/vanbox/vanbox.toml", help="configuration file")
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be deleted; change nothing"
    )
    parser.add_argument("--hub", action="store_true", help="prune the hub's database")
    parser.add_argument("--database", help="database file (overrides the configuration)")


def run(args) -> int:
    cfg = load_config(args.config)
    if args.database:
        path = args.database
    elif args.hub:
        path = cfg.hub["database"]
        if not path:
            raise VanboxError('hub.database = "": set the hub\'s database file to prune it')
    else:
        path = cfg.database["path"]
    if not is_url(path) and not Path(path).exists():
        raise VanboxError(f"{path}: no database there; nothing to prune")
    days = cfg.database["retention_days"]
    store = open_store(path, van="" if args.hub else cfg.van["id"], tz=cfg.timezone)
    try:
        result = prune(
            store,
            days,
            utcnow(),
            dry_run=args.dry_run,
            window_days=cfg.mqtt["reconcile_days"],
            crew=cfg.reports["crew"],
        )
    finally:
        store.close()
    if args.dry_run:
        print(
            f"dry run: would fold {result.folded_days} day(s) and delete"
            f" {result.positions} positions, {result.footfall} footfall events and"
            f" {result.checkins} check-ins from before {result.cutoff}"
            f" (retention {days} days)"
        )
    else:
        print(f"{path}: {result.summary()} (retention {days} days)")
    return 0
