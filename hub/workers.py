"""Several ingest workers on one hub database: MQTT 5 shared subscriptions.

``vanbox hub --workers N`` (or ``hub.workers`` in the config, default 1) runs the hub's
web process with ingest worker 0 inside it and starts workers 1..N-1 as child processes
(``python -m hub.workers --index I``). One worker is the plain :class:`hub.ingest.Hub`
(one subscription to ``<prefix>/+/#``, MQTT 3.1.1); with two or more each worker is a
:class:`WorkerHub`:

- **the events** (``location``, ``track``, ``footfall``, ``checkin``, ``stop``,
  ``contact``: every kind of :data:`telemetry.topics.EVENT_KINDS` and of the event-kind
  registry :mod:`telemetry.kinds`, but ``status``) come through the shared
  subscriptions ``$share/vanbox-hub/<prefix>/+/<kind>``: the broker hands each message
  to one worker of the group. Their order does not matter: each event carries its id
  (stored once, ``ON CONFLICT``) and its own time;
- **what depends on order or on retained messages** (``status``, ``bridge``, ``tally``
  and Home Assistant's ``homeassistant/status``) goes to worker 0 alone, on an ordinary
  subscription: a shared subscription gets no retained messages (MQTT 5, 4.8.2;
  mosquitto 2 follows it, tests/hub/test_shared_workers.py checks), and the broker keeps
  a topic's order only within one subscription. So a van's online/offline flips are
  applied in the order the van sent them, and the retained tallies start the
  reconciliation (hub/reconcile.py) when worker 0 (re)subscribes. Worker 0 also runs
  the reconciler, the plan publisher and the feeds, like the single hub.

Each worker has its own persistent session (client id ``<hub.client_id>-w<I>``,
``clean_start`` false, session expiry :data:`SESSION_EXPIRY_S`). A message the broker
gave to a worker stays in that worker's session until the worker acknowledges it (after
it is stored): a worker killed mid-batch gets its unacknowledged messages again when it
comes back (mosquitto 2.0 does not hand them to another member of the group; measured in
the test). A worker that never comes back leaves them in its session until it expires;
the reconciliation then asks the boxes for those days again. So run the workers under a
supervisor that restarts them (systemd ``Restart=always``; the web process restarts its
children).

Tallies are compared :data:`TALLY_DELAY_S` after they arrive: the events a box sent just
before its tally may still be in another worker's batch.

The database is the hub's SQLite file in WAL mode with a 30 s busy timeout: the workers
write one batch per transaction; a ``database is locked`` that outlasts it is a
transient error and the batch is retried (hub/ingest_batch.py). Nothing here is specific
to SQLite but that file path; a server database can take its place.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry import kinds, topics
from telemetry.errors import ConfigError
from telemetry.store import Store
from telemetry.stores import open_store

from .ingest import HA_STATUS_TOPIC, Hub

log = logging.getLogger("vanbox.hub")

SHARE_GROUP = "vanbox-hub"
ORDERED_KINDS = ("status", topics.BRIDGE_KIND, "tally")
SESSION_EXPIRY_S = 7 * 86_400  # the broker keeps a stopped worker's messages this long
TALLY_DELAY_S = 2.0
MAX_WORKERS = 16


def shared_kinds() -> tuple[str, ...]:
    """The topic kinds spread over the workers: the events, whose order does not matter."""
    every = dict.fromkeys([*topics.EVENT_KINDS, *(k.topic for k in kinds.registered())])
    return tuple(k for k in every if k not in ORDERED_KINDS)


def worker_count(value: Any) -> int:
    """``hub.workers`` / ``--workers``, checked: an integer 1..MAX_WORKERS."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"hub.workers = {value!r}: use a whole number 1..{MAX_WORKERS}")
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"hub.workers = {value!r}: use a whole number 1..{MAX_WORKERS}") from None
    if not 1 <= n <= MAX_WORKERS:
        raise ConfigError(f"hub.workers = {n}: use 1..{MAX_WORKERS}")
    return n


def worker_client_id(base: str, index: int) -> str:
    return f"{base}-w{index}"


class WorkerHub(Hub):
    """One ingest worker of a group (MQTT 5). ``index`` 0 also takes the ordered kinds;
    ``shared=False`` with ``ordered=False`` is a connection that only publishes (a web
    process publishing plans)."""

    def __init__(
        self,
        store: Store,
        mqtt_cfg: dict[str, Any],
        *,
        client_id: str,
        index: int = 0,
        shared: bool = True,
        ordered: bool | None = None,
        group: str = SHARE_GROUP,
        session_expiry_s: int = SESSION_EXPIRY_S,
        **kw: Any,
    ) -> None:
        super().__init__(store, mqtt_cfg, client_id=client_id, **kw)
        self.index = index
        self.shared = shared
        self.ordered = index == 0 if ordered is None else ordered
        self.group = group
        self.session_expiry_s = int(session_expiry_s)

    def subscriptions(self) -> list[tuple[str, int]]:
        p = self.prefix
        subs: list[tuple[str, int]] = []
        if self.shared:
            subs += [(f"$share/{self.group}/{p}/+/{k}", 1) for k in shared_kinds()]
        if self.ordered:
            subs += [(f"{p}/+/{k}", 1) for k in ORDERED_KINDS]
            if self.homeassistant is not None:
                subs.append((HA_STATUS_TOPIC, 1))
        return subs

    def _session_options(self) -> dict:
        """MQTT 5 (shared subscriptions); the session's persistence is set on connect."""
        return {"protocol": mqtt.MQTTv5}

    def _connect_async(self, client: mqtt.Client) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        client.connect_async(
            self.cfg.get("host", "localhost"),
            int(self.cfg.get("port", 1883)),
            keepalive=int(self.cfg.get("keepalive", 60)),
            clean_start=False,  # paho's default starts clean on the first connect
            properties=props,
        )


class Deferred:
    """An ``on_control`` hook run ``delay_s`` later on a thread of its own (tallies wait
    for the events other workers may still hold)."""

    def __init__(self, handler: Callable[[Any, list], None], delay_s: float = TALLY_DELAY_S):
        self.handler = handler
        self.delay_s = float(delay_s)

    def __call__(self, hub: Any, items: list) -> None:
        def run() -> None:
            try:
                self.handler(hub, items)
            except Exception:  # noqa: BLE001 - like the hub's own control handler
                log.exception("deferred control handler failed")

        t = threading.Timer(self.delay_s, run)
        t.daemon = True
        t.start()


# --- the worker process ----------------------------------------------------------------


def make_worker(cfg, store: Store, index: int, count: int) -> Hub:
    """The ingest of worker ``index`` of ``count``: the plain hub for one worker."""
    from .reconcile import Reconciler
    from .registry import Registrar

    prefix = cfg.mqtt["topic_prefix"]
    base = cfg.hub["client_id"]
    registrar = Registrar(store)
    if count == 1:
        return Hub(store, cfg.mqtt, client_id=base, prefix=prefix,
                   on_batch=registrar, on_control=Reconciler(store, prefix=prefix))  # fmt: skip
    return WorkerHub(
        store,
        cfg.mqtt,
        client_id=worker_client_id(base, index),
        index=index,
        prefix=prefix,
        on_batch=registrar,
        on_control=Deferred(Reconciler(store, prefix=prefix)) if index == 0 else None,
    )


def spawn(args: list[str], index: int, count: int) -> subprocess.Popen:
    """Start worker ``index`` as a child process with the parent's config arguments."""
    cmd = [sys.executable, "-m", "hub.workers", "--index", str(index), "--count", str(count)]
    return subprocess.Popen(cmd + args, start_new_session=False)


class Children:
    """Workers 1..N-1 of the web process: started, restarted when they die, stopped."""

    def __init__(self, args: list[str], count: int, restart_s: float = 2.0) -> None:
        self.args, self.count, self.restart_s = args, count, restart_s
        self.procs: dict[int, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for i in range(1, self.count):
            self.procs[i] = spawn(self.args, i, self.count)
        self._thread = threading.Thread(target=self._watch, name="hub-workers", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.restart_s):
            for i, p in list(self.procs.items()):
                if p.poll() is not None:
                    log.error("ingest worker %d exited (%s); starting it again", i, p.returncode)
                    self.procs[i] = spawn(self.args, i, self.count)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv: list[str] | None = None) -> int:
    from hub.server import _config

    ap = argparse.ArgumentParser(prog="python -m hub.workers", description=__doc__.split("\n")[0])
    ap.add_argument("--config", metavar="PATH")
    ap.add_argument("--db", metavar="PATH")
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    a = ap.parse_args(argv)
    fmt = f"%(asctime)s worker {a.index} %(levelname)s %(message)s"
    logging.basicConfig(level=os.environ.get("VANBOX_LOG", "INFO"), format=fmt)
    try:
        count = worker_count(a.count)
        if not 0 <= a.index < count:
            raise ConfigError(f"--index {a.index}: use 0..{count - 1}")
        cfg = _config(a.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = open_store(a.db or cfg.hub["database"] or cfg.database["path"], tz=cfg.timezone)
    hub = make_worker(cfg, store, a.index, count)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    hub.start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        hub.stop()
        store.close()
        st = hub.stats
        log.info("worker stats %s", json.dumps({"index": a.index, "received": st.received,
                 "events": st.events, "stored": st.stored, "batches": st.batches,
                 "cpu_s": round(time.process_time(), 3)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
