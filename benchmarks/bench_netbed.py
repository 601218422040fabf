"""The van on a mobile link, every profile: ``sudo .venv/bin/python benchmarks/bench_netbed.py``.

Runs deploy/netbed.py's scenarios one after another (two network namespaces, the real
publisher, mosquitto and hub; see that file) and prints per profile: events lost and
received twice, the time to notice a dead link and to reconnect after it, whether the
backlog went out by priority, and the bytes on the wire per 8-hour service day. The
baseline is the same publisher without the link tuning (no TCP keepalive or
TCP_USER_TIMEOUT, the full reconnect backoff while the link is dark), measured in the
same run.

``--quick`` shortens the blackouts and the flapping (about 10 minutes in all); the full
set (blackouts of 30 s, 2 and 10 minutes, 5 minutes of flapping) takes about 35 minutes.
Skips with the reason where network namespaces are not allowed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("netbed", ROOT / "deploy" / "netbed.py")
netbed = importlib.util.module_from_spec(spec)
sys.modules["netbed"] = netbed
spec.loader.exec_module(netbed)


def scenarios(quick: bool, keepalive: int) -> list[tuple[str, object]]:
    S = netbed.Scenario
    ka = keepalive
    long_s = 120.0 if quick else 600.0
    flap_s = 60.0 if quick else 300.0
    common = {"keepalive": ka, "speed": 120.0, "sim_seconds": 3600.0, "idle_s": 60.0}
    out = [
        ("lte, blackout 30 s", S("lte", blackouts=[(10, 30)], **common)),
        ("lte, blackout 2x keepalive", S("lte", blackouts=[(10, 2 * ka)], **common)),
        ("lte, blackout 2x keepalive, untuned (baseline)",
         S("lte", blackouts=[(10, 2 * ka)], untuned=True, **common)),
        (f"lte, blackout {long_s:.0f} s", S("lte", blackouts=[(10, long_s)], **common)),
        (f"lte, blackout {long_s:.0f} s, untuned (baseline)",
         S("lte", blackouts=[(10, long_s)], untuned=True, **common)),
        ("lte, idle van, blackout 2x keepalive",
         S("lte", blackouts=[(ka, 2 * ka)], **{**common, "speed": 1.0, "sim_seconds": 4 * ka})),
        ("bad, blackout 2x keepalive", S("bad", blackouts=[(10, 2 * ka)], **common)),
        (f"lte, flapping 5 s/5 s for {flap_s:.0f} s", S("lte", flap=(5, 5, flap_s), **common)),
        ("idle link, keepalive 60: bytes by the clock",
         S("lte", keepalive=60, speed=1.0, sim_seconds=10.0, idle_s=600.0)),
        ("idle link, keepalive 60, untuned (baseline)",
         S("lte", keepalive=60, speed=1.0, sim_seconds=10.0, idle_s=600.0, untuned=True)),
        ("lte via the bridge, blackout 2x keepalive",
         S("lte", mode="bridge", blackouts=[(10, 2 * ka)], **common)),
        ("bad via the bridge, blackout 2x keepalive",
         S("bad", mode="bridge", blackouts=[(10, 2 * ka)], **common)),
    ]  # fmt: skip
    return out


def worst(outages: list[dict], key: str, *, all_: bool = True) -> str:
    """The largest figure of the outages; "never" if one of them has none."""
    xs = [o[key] for o in outages]
    if not xs:
        return "-"
    if all_ and any(x is None for x in xs):
        return "never"
    xs = [x for x in xs if x is not None]
    return f"{max(xs):g}" if xs else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keepalive", type=int, default=30)
    ap.add_argument("--only", help="run the scenarios whose name contains this")
    ap.add_argument("--json", type=Path, help="write every result here")
    a = ap.parse_args()
    reason = netbed.unavailable()
    if reason:
        print(f"bench_netbed: skipped: {reason}")
        return 0
    results = []
    for name, sc in scenarios(a.quick, a.keepalive):
        if a.only and a.only not in name:
            continue
        r = netbed.run_scenario(sc)
        r["name"] = name
        results.append(r)
        print(f"== {name}\n{netbed.summary(r)}", flush=True)
        if Path(r["work"]).exists():
            print(f"  (not every check passed: the files are in {r['work']})")
    print(f"\n{'scenario':<48}{'lost':>5}{'twice':>6}{'dup.dlv':>8}{'van s':>7}"
          f"{'centre s':>9}{'back s':>8}{'prio':>6}{'MB/day':>8}  ok")  # fmt: skip
    for r in results:
        o = [x for x in r["outages"] if x["down_s"] > 15]  # long enough to be noticed
        bridge = r["scenario"]["mode"] == "bridge"  # the van side does not notice: see
        back = "central_back_after_s" if bridge else "reconnected_after_s"  # the docs
        print(f"{r['name']:<48}{sum(r['lost'].values()):>5}"
              f"{sum(r['stored_twice'].values()):>6}{r['delivered_twice']:>8}"
              f"{worst(o, 'noticed_after_s'):>7}{worst(o, 'central_noticed_after_s'):>9}"
              f"{worst(r['outages'], back, all_=False):>8}"
              f"{str(r['priority_ok']):>6}{r['bytes_per_day']['total'] / 1e6:>8.2f}"
              f"  {'yes' if netbed.result_ok(r) else 'NO'}")  # fmt: skip
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
