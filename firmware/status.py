"""``vanbox status``: what the person installing the box wants to see at a glance.

Reads the database directly (last fix and its age, outbox depth, today's counts) and asks
the running box over its local web port for what only the process knows (broker
connection, GPS port). Exit status 0 when the box answers, 1 when it does not.

``--url`` may also name a hub: its ``/status.json`` says ``"mode": "hub"`` and lists every
van, printed as a table (online or offline, last contact, age of the last fix, the outbox
depth the van last reported, days complete on the hub).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from telemetry.config import load_config
from telemetry.errors import VanboxError
from telemetry.events import utcnow
from telemetry.store import Store


def add_arguments(parser) -> None:
    parser.add_argument("--config", default="/etc/vanbox/vanbox.toml", help="configuration file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--url",
        help="ask a running box at this address instead (e.g. the demo: http://127.0.0.1:8080)",
    )


def ask_box(bind: str, port: int, timeout: float = 2.0) -> dict | None:
    host = "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
    return ask_url(f"http://{host}:{port}", timeout)


def ask_url(url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/status.json", timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def collect(cfg) -> dict:
    path = Path(cfg.database["path"])
    if not path.exists():
        raise VanboxError(f"database.path = {str(path)!r}: no database yet; has the box run?")
    store = Store(path, van=cfg.van["id"], tz=cfg.timezone, tid=cfg.van["tid"])
    try:
        now = utcnow()
        last = store.last_position()
        out = {
            "van": cfg.van["id"],
            "last_fix": None
            if last is None
            else {
                "lat": last.lat,
                "lon": last.lon,
                "mode": last.mode,
                "time": last.time.isoformat(),
                "age_s": round((now - last.time).total_seconds(), 1),
            },
            "outbox": store.outbox_depth(),
            "outbox_oldest_age_s": None
            if store.outbox_oldest() is None
            else round(now.timestamp() - store.outbox_oldest(), 1),
            "today": store.today(now),
            "hub_unconfirmed_days": _unconfirmed(store),
        }
    finally:
        store.close()
    out["box"] = ask_box(cfg.kiosk["bind"], cfg.kiosk["port"])
    return out


def _unconfirmed(store: Store) -> list[str] | None:
    """Days the hub has not confirmed yet (None when this box does not publish)."""
    from telemetry.delivery import unconfirmed_days
    from telemetry.retention import tracks_delivery

    if not tracks_delivery(store):
        return None
    return unconfirmed_days(store, store.day_of(utcnow()))


def collect_remote(url: str) -> dict:
    """What a running box (or hub: ``"mode": "hub"``) says about itself."""
    box = ask_url(url)
    if box is None:
        raise VanboxError(f"--url {url}: no vanbox answers there (is it running?)")
    if box.get("mode") == "hub":
        return box
    mq = box.get("mqtt") or {}
    return {
        "van": box.get("van"),
        "last_fix": box.get("last_fix"),
        "outbox": box.get("outbox"),
        "outbox_oldest_age_s": mq.get("oldest_age_s"),
        "today": box.get("today"),
        "box": box,
    }


def hub_table(s: dict) -> list[str]:
    """The hub's answer as a table, one line per van."""
    head = ("van", "link", "last contact", "last fix", "outbox", "days complete")
    rows = [head]
    for v in s.get("vans") or []:
        fix = v.get("last_fix")
        days = v.get("days") or 0
        done = v.get("days_complete") or 0
        contact = v.get("last_contact_age_s")
        rows.append(
            (
                str(v.get("van")) + (f" ({v['name']})" if v.get("name") else ""),
                str(v.get("status")),
                "-" if contact is None else age_text(contact) + " ago",
                "none" if not fix else age_text(fix["age_s"]) + " ago",
                "-" if v.get("outbox") is None else str(v["outbox"]),
                f"{done}/{days}" + ("" if done == days else " INCOMPLETE") if days else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for v in s.get("vans") or []:
        for day, kinds in sorted((v.get("incomplete") or {}).items())[:5]:
            lines.append(f"  {v.get('van')} {day}: hub lacks {', '.join(kinds)}")
    health = "working" if s.get("healthy") else f"NOT working: {s.get('failed')}"
    lines.append(f"hub: {health}; dead letters: {s.get('dead_letters')}")
    return lines


def run(args) -> int:
    if args.url:
        s = collect_remote(args.url)
        port = args.url
        if s.get("mode") == "hub":
            print(json.dumps(s, indent=2) if args.json else "\n".join(hub_table(s)))
            return 0
    else:
        cfg = load_config(args.config)
        s = collect(cfg)
        port = cfg.kiosk["port"]
    if args.json:
        print(json.dumps(s, indent=2))
        return 0 if s["box"] else 1
    fix = s["last_fix"]
    print(f"van:        {s['van']}")
    if fix and "lat" in fix:
        print(f"last fix:   {fix['lat']:.5f}, {fix['lon']:.5f} ({fix['mode']}D), "
              f"{age_text(fix['age_s'])} ago")  # fmt: skip
    elif fix:  # asked over HTTP without a staff login: no position
        print(f"last fix:   {fix['mode']}D, {age_text(fix['age_s'])} ago"
              " (position for logged-in staff only)")  # fmt: skip
    else:
        print("last fix:   none recorded yet")
    oldest = s["outbox_oldest_age_s"]
    print(f"outbox:     {s['outbox']} waiting" + (f", oldest {age_text(oldest)}" if oldest else ""))
    days = s.get("hub_unconfirmed_days")
    if days is not None:
        print("hub:        every earlier day confirmed" if not days else
              f"hub:        {len(days)} earlier day(s) not confirmed yet (oldest {days[0]});"
              " kept until the hub has them")  # fmt: skip
    box = s["box"]
    if box is None:
        print(f"box:        not answering on port {port} (is vanbox.service running?"
              " see: journalctl -u vanbox)")  # fmt: skip
    else:
        mq = box.get("mqtt")
        if mq is None:
            print("broker:     MQTT switched off in the config")
        else:
            state = "connected" if mq.get("connected") else "NOT connected"
            print(f"broker:     {mq.get('host')} {state}")
        if box.get("retry_queue"):
            print(f"disk:       {box['retry_queue']} events wait in memory (database full?)")
        gps = box.get("gps") or {}
        print(f"gps port:   {gps.get('port')} {'open' if gps.get('open') else 'NOT open'}")
    t = {k: "<3" if v is None else v for k, v in s["today"].items()}
    print(f"today:      in {t['in']}, out {t['out']}, passes {t['pass']}, inside {t['occupancy']},"
          f" check-ins {t['checkins']}")  # fmt: skip
    return 0 if box else 1
