"""``vanbox hub``: the server side. Subscribes to every van and serves the public live
map and the staff reports for all of them, under waitress.

    vanbox hub [--config PATH] [--port N] [--db PATH] [--bind ADDR] [--threads N]
               [--workers N] [--no-ingest]

The config is ``--config``, else ``/etc/vanbox/vanbox.toml`` if it exists, else the
built-in defaults. The database is ``--db``, else ``hub.database``, else
``database.path``. The broker is the ``[mqtt]`` section (host, port, tls, ca_file,
username, password_file); the hub's client id is ``hub.client_id`` (keep it fixed: the
broker queues messages for that session while the hub is down).

``--workers N`` (``hub.workers``, default 1) ingests with N workers over MQTT 5 shared
subscriptions: worker 0 in this process, 1..N-1 as child processes (hub/workers.py).
``--no-ingest`` serves the web pages only (another process ingests): any number of such
web processes can serve the same staff users, whose sessions and lockouts are in the
database; staff changes to a plan are published on a connection of their own.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from telemetry.config import DEFAULT_PATH, Config, default_config, load_config

log = logging.getLogger("vanbox.hub")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--port", type=int, help="HTTP port (default hub.port, 8090)")
    parser.add_argument("--bind", help="HTTP address (default hub.bind)")
    parser.add_argument("--db", metavar="PATH", help="SQLite file (default hub.database)")
    parser.add_argument("--threads", type=int, default=8, help="web server threads (default 8)")
    parser.add_argument("--workers", help="ingest workers (default hub.workers, 1)")
    parser.add_argument(
        "--no-ingest", action="store_true", help="web only: another process ingests"
    )


def _config(path: str | None) -> Config:
    if path:
        return load_config(path)
    if DEFAULT_PATH.exists():
        return load_config(DEFAULT_PATH)
    log.warning("no %s: running with the built-in defaults", DEFAULT_PATH)
    return default_config()


def run(args: argparse.Namespace) -> int:
    from hub.ingest import Hub
    from hub.plans import PlanPublisher, install
    from hub.reconcile import Reconciler
    from hub.registry import Registrar
    from kiosk import create_app
    from kiosk.serve import make_server
    from kiosk.status import register_check
    from telemetry import registry
    from telemetry.homeassistant import HomeAssistantDiscovery
    from telemetry.privacy import known_vans
    from telemetry.stores import open_store

    from .other_batches import OtherBatches
    from .workers import Children, Deferred, WorkerHub, worker_client_id, worker_count

    cfg = _config(args.config)
    workers = worker_count(args.workers or cfg.hub.get("workers", 1))  # ConfigError: exit 2
    if getattr(args, "no_ingest", False):
        workers = 0
    db = args.db or cfg.hub["database"] or cfg.database["path"]
    # a path: SQLite; postgresql://...: PostgreSQL, where a web thread holds a pooled
    # connection for a staff page's snapshot and may take a second to write its session
    store = open_store(db, tz=cfg.timezone, max_size=2 * max(1, args.threads) + 4)
    prefix = cfg.mqtt["topic_prefix"]
    ha = None
    if cfg.hub["homeassistant"] and workers:
        names = {cfg.van["id"]: cfg.van["name"]}
        names.update({v.id: v.name for v in registry.all_vans(store) if v.name})
        bridged = [
            r[0]
            for r in store.reader().execute("SELECT van FROM van_status WHERE bridge IS NOT NULL")
        ]
        ha = HomeAssistantDiscovery(prefix, known_vans(store), names, bridged=bridged, store=store)
    from hub.forward import Forwarder
    from hub.owntracks import OwnTracksView

    listeners = [Registrar(store)]  # a van's first message registers it (state "new")
    # None: no [hub.forward], or web only (the ingest process forwards)
    forwarder = Forwarder.from_config(store, cfg.hub["forward"]) if workers else None
    if forwarder is not None:
        listeners.append(forwarder.wake)  # never waits: its threads do the POSTs
    batch_lock = threading.Lock()  # worker 0's batches and the others' (OtherBatches)

    def on_batch(vans: set[str]) -> None:
        with batch_lock:
            for f in listeners:
                f(vans)

    common = dict(
        prefix=prefix,
        homeassistant=ha,
        on_batch=on_batch,
        # each van's tally is compared and acknowledged; missing days are asked again
        on_control=Reconciler(store, prefix=prefix),
    )
    base = cfg.hub["client_id"]
    if workers == 1:
        hub = Hub(store, cfg.mqtt, client_id=base, **common)
    elif workers > 1:  # worker 0: the ordered kinds, tallies (a little later) and feeds
        common["on_control"] = Deferred(common["on_control"])
        hub = WorkerHub(store, cfg.mqtt, client_id=worker_client_id(base, 0), **common)
    else:  # web only: a connection that publishes plans and subscribes to nothing
        hub = WorkerHub(store, cfg.mqtt, client_id=f"{base}-web-{os.getpid()}", shared=False,
                        ordered=False, session_expiry_s=0, prefix=prefix)  # fmt: skip
    children = others = None
    if workers > 1:
        fwd = ["--db", str(db)] + (["--config", args.config] if args.config else [])
        children = Children(fwd, workers)
        others = OtherBatches(store, on_batch)  # their positions reach the feeds live
    ot = cfg.hub["owntracks"]
    if ot["enabled"] and workers:
        listeners.append(OwnTracksView(store, hub.publish, topic=ot["topic"],
                                       public=ot["public"], config=cfg))  # fmt: skip
    app = create_app(config=cfg, store=store, mode="hub")
    if workers:
        register_check(app, "hub_ingest", hub.health)  # /healthz fails when ingest is stuck
    plans = PlanPublisher(store, hub.publish, prefix=prefix)
    install(app, plans)  # each staff change to a plan is published retained to its van
    host = args.bind or cfg.hub["bind"]
    port = args.port or cfg.hub["port"]
    server = make_server(app, host=host, port=port, role="hub", threads=max(1, args.threads),
                         ident="vanbox-hub", trusted_proxy=cfg.hub["trusted_proxy"])  # fmt: skip
    stopping = threading.Event()

    def on_term(signum, frame) -> None:
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    hub.start()
    if children is not None:
        children.start()
        others.start()
    if forwarder is not None:
        forwarder.start()
    plans.watch(hub)  # every van's plan again on each (re)connect
    log.info(
        "hub: broker %s:%s, database %s, web http://%s:%s/",
        cfg.mqtt["host"], cfg.mqtt["port"], db, host, port,
    )  # fmt: skip
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("hub: stopping")
        server.close()
        plans.stop()
        hub.stop()
        if children is not None:
            others.stop()
            children.stop()
        if forwarder is not None:
            forwarder.stop()
        store.close()
    return 0
