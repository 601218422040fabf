"""A box's publishing process for the delivery tests (run as a script, stopped with
SIGTERM): the real Publisher with reconciliation, on the box database ``--db``.

    python _delivery_child.py --db DB --port PORT --van VAN [--tally-s S] [--backoff-s S]

The test records events into the same database file from its own process (WAL allows
it); the publisher notices them through ``PRAGMA data_version`` as it would the box's own
writes. It prints ``ready`` once the publisher runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--van", required=True)
    ap.add_argument("--tally-s", type=float, default=0.3)
    ap.add_argument("--backoff-s", type=float, default=1.0)
    ap.add_argument("--outbox-max", type=int, default=200_000)
    a = ap.parse_args(argv)

    from telemetry.publisher import Publisher
    from telemetry.store import Store

    store = Store(a.db, van=a.van, tid="DV")
    cfg = {
        "host": "127.0.0.1",
        "port": a.port,
        "keepalive": 5,
        "rate_limit": 5000.0,
        "client_id": f"vanbox-{a.van}",
        "outbox_max_rows": a.outbox_max,
    }
    pub = Publisher(
        store, cfg, van=a.van, tid="DV", backoff_min=0.05, backoff_max=0.5,
        tally_min_s=a.tally_s, tally_full_s=a.tally_s * 2, resend_backoff_s=a.backoff_s,
    )  # fmt: skip
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    pub.start()
    print("ready", flush=True)
    done.wait()
    pub.stop()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
