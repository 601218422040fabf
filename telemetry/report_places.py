"""The report builders by place (:mod:`telemetry.report_tables`): the summary, visitors
per stop, per municipality, and the district town against the rural municipalities."""

from __future__ import annotations

from datetime import timedelta

from .report_model import NOT_AT_STOP, REPORTS, Opts, Period, Table, _int, _share, _table
from .report_sums import _PER_STOP, _of, _sums
from .sums import visit_counts


def _summary(conn, p: Period, van, o: Opts) -> Table:
    per_stop = _sums(conn, p, van, o, "stop")
    vis = _of(per_stop, "visit_visitors")
    visitors = sum(vis.values())
    rural = sum(n for k, n in vis.items() if k is not None and k[1] != o.town)
    checkins = sum(_of(per_stop, "visit_checkins").values())
    first = _of(_sums(conn, p, van, o, "key"), "first")
    visits = visit_counts(conn, p.start, p.end, "stop", van=van)
    rows = [
        ["Visitors", _int(visitors)],
        ["Check-ins", _int(checkins)],
        ["First visits", _int(first.get("1", 0))],
        ["Returning visitors", _int(first.get("0", 0))],
        ["Stop visits (tour)", sum(n for k, n in visits.items() if k[2])],
        ["Unplanned stops", sum(n for k, n in visits.items() if not k[2])],
        ["Places served", len({k[0] for k in visits})],
        [f"Visitors outside the town of {o.town}", _int(rural)],
        [f"Share outside the town of {o.town} (%)", _share(rural, visitors)],
    ]
    notes = [f"{p.label}: {p.start.isoformat()} to {(p.end - timedelta(days=1)).isoformat()}."]
    return Table(
        "summary",
        REPORTS["summary"],
        ("Figure", "Value"),
        tuple(tuple(r) for r in rows),
        "none",
        " ".join(notes),
    )


_NOWHERE = (NOT_AT_STOP, "", False)  # the stop of check-ins outside any visit


def _per_visit(conn, p: Period, van, o: Opts):
    """The visitors, check-ins and first visits per stop (``None``: not at a stop) and
    the stop visits per stop, in a fixed order (by stop)."""
    per_stop = _sums(conn, p, van, o, "stop")
    vis, chk, fst = (_of(per_stop, m) for m in _PER_STOP)
    visits = dict(sorted(visit_counts(conn, p.start, p.end, "stop", van=van).items()))
    return vis, chk, fst, visits


def _stops(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, fst, visits = _per_visit(conn, p, van, o)
    acc: dict[tuple, list] = {}
    for k, n in visits.items():
        acc.setdefault(k, [0, 0.0, 0.0, 0.0])[0] += n
    # The figures are whole numbers: the order they are added in does not change them (a
    # fleet's year has 40,000 stops; the rows are sorted once, below).
    for src, col in ((vis, 1), (chk, 2), (fst, 3)):
        for k, n in src.items():
            acc.setdefault(_NOWHERE if k is None else k, [0, 0.0, 0.0, 0.0])[col] += n
    rows = [
        [name, muni, "yes" if planned else "no", a[0], _int(a[1]), _int(a[2]), _int(a[3])]
        for (name, muni, planned), a in acc.items()
    ]
    rows.sort(key=lambda r: (r[0] == NOT_AT_STOP, -r[4], r[0], r[1], r[2]))
    total = ["Total", "", "", sum(r[3] for r in rows)] + [
        sum(r[c] for r in rows) for c in (4, 5, 6)
    ]
    return _table(
        "stops",
        ("Stop", "Municipality", "Planned", "Visits", "Visitors", "Check-ins", "First visits"),
        rows,
        "bar",
        [],
        total,
    )


def _municipalities(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, _fst, visits = _per_visit(conn, p, van, o)
    acc: dict[str, list] = {}
    for k, n in visits.items():
        acc.setdefault(k[1], [0, 0.0, 0.0])[0] += n
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            muni = NOT_AT_STOP if k is None else k[1]
            acc.setdefault(muni, [0, 0.0, 0.0])[col] += n
    total_vis = sum(a[1] for a in acc.values())
    rows = [
        [muni, a[0], _int(a[1]), _int(a[2]), _share(a[1], total_vis)] for muni, a in acc.items()
    ]
    rows.sort(key=lambda r: (r[0] == NOT_AT_STOP, -r[2], r[0]))
    total = ["Total", sum(r[1] for r in rows), _int(total_vis), sum(r[3] for r in rows)]
    total.append(100.0 if total_vis else None)
    return _table(
        "municipalities",
        ("Municipality", "Visits", "Visitors", "Check-ins", "Share of visitors (%)"),
        rows,
        "bar",
        [],
        total,
    )


def _rural(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, _fst, visits = _per_visit(conn, p, van, o)
    labels = (f"Town of {o.town}", "Rural municipalities")
    acc = {labels[0]: [0, 0.0, 0.0], labels[1]: [0, 0.0, 0.0]}
    for k, n in visits.items():
        acc[labels[k[1] != o.town]][0] += n
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            key = NOT_AT_STOP if k is None else labels[k[1] != o.town]
            acc.setdefault(key, [0, 0.0, 0.0])[col] += n
    total_vis = sum(a[1] for a in acc.values())
    rows = [[k, a[0], _int(a[1]), _int(a[2]), _share(a[1], total_vis)] for k, a in acc.items()]
    return _table(
        "rural",
        ("Area", "Visits", "Visitors", "Check-ins", "Share of visitors (%)"),
        rows,
        "pie",
        [],
    )
