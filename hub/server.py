"""``vanbox hub``: the server side. Subscribes to every van and serves the public live
map and the staff reports for all of them, under waitress.

    vanbox hub [--config PATH] [--port N] [--db PATH] [--bind ADDR] [--threads N]

The config is ``--config``, else ``/etc/vanbox/vanbox.toml`` if it exists, else the
built-in defaults. The database is ``--db``, else ``hub.database``, else
``database.path``. The broker is the ``[mqtt]`` section (host, port, tls, ca_file,
username, password_file); the hub's client id is ``hub.client_id`` (keep it fixed: the
broker queues messages for that session while the hub is down).
"""

from __future__ import annotations

import argparse
import logging
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


def _config(path: str | None) -> Config:
    if path:
        return load_config(path)
    if DEFAULT_PATH.exists():
        return load_config(DEFAULT_PATH)
    log.warning("no %s: running with the built-in defaults", DEFAULT_PATH)
    return default_config()


def run(args: argparse.Namespace) -> int:
    import waitress

    from hub.ingest import Hub
    from kiosk import create_app
    from telemetry.homeassistant import HomeAssistantDiscovery
    from telemetry.privacy import known_vans
    from telemetry.store import Store

    cfg = _config(args.config)
    db = args.db or cfg.hub["database"] or cfg.database["path"]
    store = Store(db, tz=cfg.timezone)
    ha = None
    if cfg.hub["homeassistant"]:
        ha = HomeAssistantDiscovery(
            cfg.mqtt["topic_prefix"], known_vans(store), {cfg.van["id"]: cfg.van["name"]}
        )
    hub = Hub(
        store,
        cfg.mqtt,
        client_id=cfg.hub["client_id"],
        prefix=cfg.mqtt["topic_prefix"],
        homeassistant=ha,
    )
    app = create_app(config=cfg, store=store, mode="hub")
    host = args.bind or cfg.hub["bind"]
    port = args.port or cfg.hub["port"]
    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=max(1, args.threads),
        connection_limit=1000,
        backlog=1024,
        channel_timeout=60,
        ident="vanbox-hub",
    )
    stopping = threading.Event()

    def on_term(signum, frame) -> None:
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    hub.start()
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
        hub.stop()
        store.close()
    return 0
