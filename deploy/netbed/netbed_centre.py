"""The centre of the network test bed: ``python deploy/netbed/netbed_centre.py SETTINGS.json``.

Runs inside the central namespace beside the central mosquitto: the real hub
(``hub.ingest.Hub``, its own SQLite file, a persistent session) and a wire log, a
second subscriber that writes every message the broker delivers for the van
(``wire.jsonl``: wall time, topic, size, the event ids it carries), so
``deploy/netbed.py`` can count redeliveries and check the order of arrival.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from hub.ingest import Hub  # noqa: E402
from telemetry.config import DEFAULTS  # noqa: E402
from telemetry.store import Store  # noqa: E402


def ids_of(topic: str, payload: bytes) -> list[str]:
    """The event ids a van message carries (none for status, tally, bridge...)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    if topic.endswith("/track"):
        return [p.get("id") for p in doc.get("points", []) if isinstance(p, dict)]
    return [doc["id"]] if isinstance(doc.get("id"), str) else []


def main(path: str) -> int:
    s = json.loads(Path(path).read_text())
    work = Path(s["work"])
    store = Store(work / "hub.db", tz="Europe/Berlin")
    cfg = {**DEFAULTS["mqtt"], "host": "127.0.0.1", "port": s["port"], "keepalive": 30}
    hub = Hub(store, cfg, client_id="netbed-hub", prefix="vanbox")
    hub.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wire = open(work / "wire.jsonl", "a", buffering=1)  # noqa: SIM115
    lock = threading.Lock()

    def on_message(_c, _u, m) -> None:
        kind = m.topic.rsplit("/", 1)[-1]
        rec = {"t": time.time(), "topic": kind, "n": len(m.payload),
               "ids": ids_of(m.topic, m.payload), "dup": bool(m.dup)}  # fmt: skip
        if kind in ("status", "bridge"):  # online/offline, 1/0: the centre's view
            rec["p"] = m.payload.decode("utf-8", "replace")[:20]
        with lock:
            wire.write(json.dumps(rec) + "\n")

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="netbed-wire", clean_session=False)
    c.on_connect = lambda cl, *_: cl.subscribe(f"vanbox/{s['van']}/#", 1)
    c.on_message = on_message
    c.connect_async("127.0.0.1", s["port"], 30)
    c.loop_start()
    hub.wait_connected(20)
    (work / "hub.ready").write_text(str(os.getpid()))
    while not stop.wait(0.5):
        pass
    c.loop_stop()
    hub.stop()
    store.close()
    wire.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
