"""Reading the targets (:mod:`telemetry.targets`): a year's targets of a van, the years
that have any, the entered monthly actuals of custom targets and the change log; also the
row <-> :class:`~telemetry.targets_model.Target` mapping the writing shares."""

from __future__ import annotations

import json
import sqlite3

from .targets_model import LogEntry, Target

# --- reading --------------------------------------------------------------------------------


def _target(r) -> Target:
    return Target(
        year=int(r[0]),
        van=r[1],
        code=r[2],
        value=float(r[3]),
        profile=tuple(json.loads(r[4])) if r[4] else None,
        label=r[5],
        unit=r[6],
        lower_better=bool(r[7]),
        updated=float(r[8]),
        updated_by=r[9],
    )


_COLS = "year, van, code, value, profile, label, unit, lower_better, updated, updated_by"


def _row(t: Target) -> tuple:
    """``t`` as the values of ``_COLS``."""
    profile = json.dumps(list(t.profile)) if t.profile else None
    return (t.year, t.van, t.code, t.value, profile, t.label, t.unit, int(t.lower_better),
            t.updated, t.updated_by)  # fmt: skip


def targets(conn: sqlite3.Connection, year: int, van: str) -> dict[str, Target]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM targets WHERE year = ? AND van = ? ORDER BY code", (year, van)
    ).fetchall()
    return {r[2]: _target(r) for r in rows}


def years_with_targets(conn: sqlite3.Connection, van: str) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT year FROM targets WHERE van = ? ORDER BY year", (van,)
        )
    ]


def actuals(conn: sqlite3.Connection, year: int, van: str) -> dict[str, dict[int, float]]:
    """The entered monthly actuals of the custom targets: code -> {month: value}."""
    out: dict[str, dict[int, float]] = {}
    for code, month, value in conn.execute(
        "SELECT code, month, value FROM target_actuals WHERE year = ? AND van = ?", (year, van)
    ):
        out.setdefault(code, {})[int(month)] = float(value)
    return out


def log(conn: sqlite3.Connection, year: int, van: str, limit: int = 200) -> list[LogEntry]:
    """The newest changes of a year's targets (of that van), newest first."""
    rows = conn.execute(
        "SELECT id, ts, user, year, van, code, field, old, new FROM target_log"
        " WHERE year = ? AND van = ? ORDER BY id DESC LIMIT ?",
        (year, van, limit),
    ).fetchall()
    return [LogEntry(*tuple(r)) for r in rows]
