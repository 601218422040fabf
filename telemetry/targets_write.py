"""Changing the targets (:mod:`telemetry.targets`): save or remove a target, set a custom
target's monthly actuals, start a year from the previous one. Each change is checked
and written together with its change-log rows (who, when, which field, old -> new) in
one transaction."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from .targets_input import fmt_number, fmt_profile, parse_year
from .targets_model import (
    CODE_RE,
    CUSTOM_PREFIX,
    MAX_CUSTOM,
    MAX_VALUE,
    MAX_WEIGHT,
    MONTHS_SHORT,
    Target,
    TargetError,
)
from .targets_read import _COLS, _row, _target

if TYPE_CHECKING:
    from .store import Store


# --- writing (each change with its log rows, in one transaction) ----------------------------


def _fields(t: Target | None) -> dict[str, str | None]:
    if t is None:
        return {}
    out: dict[str, str | None] = {
        "value": fmt_number(t.value),
        "profile": fmt_profile(t.profile) or "nach Tagen",
    }
    if t.custom:
        out |= {
            "label": t.label,
            "unit": t.unit,
            "lower_better": "niedriger ist besser" if t.lower_better else "höher ist besser",
        }
    return out


def _log(conn, ts: float, user: str, t: Target, field: str, old, new) -> None:
    conn.execute(
        "INSERT INTO target_log (ts, user, year, van, code, field, old, new)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (ts, user, t.year, t.van, t.code, field, old, new),
    )


def _get(conn, year: int, van: str, code: str) -> Target | None:
    r = conn.execute(
        f"SELECT {_COLS} FROM targets WHERE year = ? AND van = ? AND code = ?", (year, van, code)
    ).fetchone()
    return _target(r) if r else None


def _check(t: Target) -> None:
    parse_year(t.year)
    if not CODE_RE.fullmatch(t.code):
        raise TargetError(f"Ziel: unbekannter Code {t.code[:40]!r}")
    if not (math.isfinite(t.value) and 0 <= t.value <= MAX_VALUE):
        raise TargetError(f"Ziel: {t.value!r} liegt nicht zwischen 0 und {fmt_number(MAX_VALUE)}")
    if t.profile is not None and (
        len(t.profile) != 12
        or not all(math.isfinite(w) and 0 <= w <= MAX_WEIGHT for w in t.profile)
        or sum(t.profile) <= 0
    ):
        raise TargetError("Monatsprofil: 12 Gewichte von 0 bis 1.000.000, nicht alle 0")
    if t.custom and not t.label:
        raise TargetError("Name: bitte angeben")


def save(store: Store, t: Target, *, user: str, now: float) -> bool:
    """Insert or change a target; logs each changed field. Returns whether anything
    changed (saving the same values again writes nothing)."""
    _check(t)
    t = replace(t, updated=now, updated_by=user)
    with store.transaction() as conn:
        old = _get(conn, t.year, t.van, t.code)
        if t.custom and old is None:
            n = conn.execute(
                "SELECT count(*) FROM targets WHERE year = ? AND van = ? AND code LIKE 'custom-%'",
                (t.year, t.van),
            ).fetchone()[0]
            if n >= MAX_CUSTOM:
                raise TargetError(f"Eigene Ziele: höchstens {MAX_CUSTOM} je Jahr")
        before, after = _fields(old), _fields(t)
        changed = [k for k in after if before.get(k) != after[k]]
        if old is None:  # a new target: log what differs from the defaults
            defaults = _fields(replace(t, profile=None, unit="", lower_better=False))
            changed = [k for k in changed if k in ("value", "label") or after[k] != defaults[k]]
        if not changed:
            return False
        conn.execute(
            f"INSERT INTO targets ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (year, van, code) DO UPDATE SET value = excluded.value,"
            " profile = excluded.profile, label = excluded.label, unit = excluded.unit,"
            " lower_better = excluded.lower_better, updated = excluded.updated,"
            " updated_by = excluded.updated_by",
            _row(t),
        )
        if old is None:
            _log(conn, now, user, t, "target", None, "angelegt")
        for k in changed:
            _log(conn, now, user, t, k, before.get(k), after[k])
    return True


def remove(store: Store, year: int, van: str, code: str, *, user: str, now: float) -> bool:
    """Delete a target (and a custom target's actuals); logged with its last value."""
    with store.transaction() as conn:
        old = _get(conn, year, van, code)
        if old is None:
            return False
        conn.execute(
            "DELETE FROM targets WHERE year = ? AND van = ? AND code = ?", (year, van, code)
        )
        gone = conn.execute(
            "DELETE FROM target_actuals WHERE year = ? AND van = ? AND code = ?",
            (year, van, code),
        ).rowcount
        _log(
            conn,
            now,
            user,
            old,
            "target",
            f"Ziel {fmt_number(old.value)}" + (f", {gone} Monatswerte" if gone else ""),
            "entfernt",
        )
    return True


def save_actuals(
    store: Store,
    year: int,
    van: str,
    code: str,
    values: dict[int, float | None],
    *,
    user: str,
    now: float,
) -> int:
    """Set (a float) or clear (None) the actual figures of a custom target's months.
    Returns how many months changed."""
    if not code.startswith(CUSTOM_PREFIX):
        raise TargetError(
            "Ist-Werte: nur für eigene Ziele; die anderen Zahlen kommen aus den Daten"
        )
    for m, v in values.items():
        if not 1 <= m <= 12:
            raise TargetError(f"Monat {m}: 1 bis 12")
        if v is not None and not (math.isfinite(v) and 0 <= v <= MAX_VALUE):
            raise TargetError(f"Ist-Wert {MONTHS_SHORT[m - 1]}: 0 bis {fmt_number(MAX_VALUE)}")
    n = 0
    with store.transaction() as conn:
        t = _get(conn, year, van, code)
        if t is None:
            raise TargetError("Ziel: nicht (mehr) vorhanden; bitte die Seite neu laden")
        have = {
            int(r[0]): float(r[1])
            for r in conn.execute(
                "SELECT month, value FROM target_actuals WHERE year = ? AND van = ? AND code = ?",
                (year, van, code),
            )
        }
        for m in sorted(values):
            v, old = values[m], have.get(m)
            if v == old:
                continue
            if v is None:
                conn.execute(
                    "DELETE FROM target_actuals WHERE year = ? AND van = ? AND code = ?"
                    " AND month = ?",
                    (year, van, code, m),
                )
            else:
                conn.execute(
                    "INSERT INTO target_actuals (year, van, code, month, value, updated,"
                    " updated_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (year, van, code,"
                    " month) DO UPDATE SET value = excluded.value, updated = excluded.updated,"
                    " updated_by = excluded.updated_by",
                    (year, van, code, m, v, now, user),
                )
            _log(
                conn,
                now,
                user,
                t,
                f"actual-{m:02d}",
                None if old is None else fmt_number(old),
                None if v is None else fmt_number(v),
            )
            n += 1
    return n


def copy_year(store: Store, src: int, dst: int, van: str, *, user: str, now: float) -> int:
    """Start year ``dst`` with the targets of ``src`` (only codes ``dst`` does not have
    yet; the actuals stay behind). Returns how many were copied."""
    parse_year(src)
    parse_year(dst)
    with store.transaction() as conn:
        have = {
            r[0]
            for r in conn.execute("SELECT code FROM targets WHERE year = ? AND van = ?", (dst, van))
        }
        src_rows = [
            _target(r)
            for r in conn.execute(
                f"SELECT {_COLS} FROM targets WHERE year = ? AND van = ?", (src, van)
            )
        ]
        n = 0
        for t in src_rows:
            if t.code in have:
                continue
            t = replace(t, year=dst, updated=now, updated_by=user)
            conn.execute(
                f"INSERT INTO targets ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(t),
            )
            _log(conn, now, user, t, "target", None, f"aus {src} übernommen")
            _log(conn, now, user, t, "value", None, fmt_number(t.value))
            if t.profile is not None:
                _log(conn, now, user, t, "profile", None, fmt_profile(t.profile))
            n += 1
    return n
