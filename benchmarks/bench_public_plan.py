"""The public side of the plans on a hub with N published vans, each with its own plan
(a cancellation and a delay each): how long the iCalendar feeds (cold: built; warm: from
the per-thread cache), the weekly timetable and the live-map API take, through Flask's
test client (no network). Medians of ``--repeat`` requests, and each as a ratio to the
live-map API measured in the same run (the baseline).

    .venv/bin/python benchmarks/bench_public_plan.py [--vans 10] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup(vans: int, db: Path):
    from kiosk import create_app
    from telemetry import registry
    from telemetry.config import default_config
    from telemetry.events import utcnow
    from telemetry.plan import PlanException, PlanStop, change_plan, new_id
    from telemetry.store import Store

    st = Store(db)
    cfg = default_config()
    today = utcnow().astimezone(cfg.tz).date()
    for i in range(vans):
        van = f"van-{i:02d}"
        registry.register(st, [van])
        registry.rename(st, van, f"Bus {i}")
        registry.publish(st, van)
        for k in range(5):  # one stop a weekday, two in the afternoon on Mondays
            stop = PlanStop(f"s{k}", f"Halt {k}", "Peine", 52.32 + 0.01 * k, 10.23, 150.0,
                            (k,), dtime(10, 0), dtime(13, 0))  # fmt: skip
            change_plan(st, van, lambda p, s=stop: p.with_stop(s))
        day = today + timedelta(days=(7 - today.weekday()) % 7)  # the next Monday
        for kind, extra in (("cancel", {"reason": "Krank"}), ("delay", {"delay_min": 30})):
            ex = PlanException(id=new_id(), kind=kind, date=day, stop_key="s0", **extra)
            change_plan(st, van, lambda p, ex=ex: p.with_exception(ex))
    return create_app({"TESTING": True}, config=cfg, store=st, mode="hub"), st


def median_ms(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vans", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    import kiosk.calendar as calendar

    with tempfile.TemporaryDirectory() as tmp:
        app, st = setup(args.vans, Path(tmp) / "hub.db")
        c = app.test_client()

        def get(path: str) -> None:
            r = c.get(path)
            assert r.status_code == 200, (path, r.status_code)

        def cold(path: str):
            def run() -> None:
                app.extensions.pop(calendar.CACHE_KEY, None)  # forget the built feeds
                get(path)

            return run

        get("/api/public/vans")
        rows = [
            (
                "/api/public/vans (baseline)",
                median_ms(lambda: get("/api/public/vans"), args.repeat),
            ),  # fmt: skip
            ("/calendar.ics cold", median_ms(cold("/calendar.ics"), max(3, args.repeat // 5))),
            ("/calendar.ics warm", median_ms(lambda: get("/calendar.ics"), args.repeat)),
            (
                "/van/van-00/calendar.ics cold",
                median_ms(cold("/van/van-00/calendar.ics"), args.repeat),
            ),  # fmt: skip
            (
                "/van/van-00/calendar.ics warm",
                median_ms(lambda: get("/van/van-00/calendar.ics"), args.repeat),
            ),  # fmt: skip
            ("/timetable", median_ms(lambda: get("/timetable"), args.repeat)),
            (
                "/van/van-00/timetable",
                median_ms(lambda: get("/van/van-00/timetable"), args.repeat),
            ),  # fmt: skip
            ("/ (all-vans page)", median_ms(lambda: get("/"), args.repeat)),
        ]
        size = len(c.get("/calendar.ics").data)
        st.close()
    base = rows[0][1]
    print(f"{args.vans} published vans, median of {args.repeat} requests (Flask test client)")
    print(f"/calendar.ics: {size} bytes")
    for name, ms in rows:
        print(f"  {name:34s} {ms:8.2f} ms   x{ms / base:7.1f} of the baseline")


if __name__ == "__main__":
    main()
