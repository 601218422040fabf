"""Storage of the balanced scorecard's targets (migration 0012): yearly targets per van
(``""`` = all vans together), the monthly actuals of custom targets, and the change log.

A target is versioned by year: each year has its own rows, and a change to one year never
touches another (:func:`copy_year` starts a year from the previous one). Every change is
written together with its log rows (who, when, which field, old -> new) in one
transaction; the log is never changed afterwards.

The text of staff's input is checked once, here, by the ``parse_*`` functions: a bad
value raises :class:`TargetError` with a German message naming the field (the staff
page shows it as it is), and nothing is stored.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import VanboxError

if TYPE_CHECKING:
    from .store import Store

YEARS = (2000, 2100)
MAX_VALUE = 1e9
MAX_WEIGHT = 1e6
NAME_MAX = 60
UNIT_MAX = 20
MAX_CUSTOM = 30  # custom targets per year and van
CODE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
CUSTOM_PREFIX = "custom-"
MONTHS_SHORT = ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez")


class TargetError(VanboxError):
    """A target or an actual figure is not valid: the (German) message names the field."""


@dataclass(frozen=True)
class Target:
    year: int
    van: str  # a van id, or "" for all vans together
    code: str
    value: float
    profile: tuple[float, ...] | None = None  # 12 monthly weights; None = pro rata by days
    label: str = ""  # custom targets: name
    unit: str = ""  # custom targets: unit
    lower_better: bool = False
    updated: float = 0.0
    updated_by: str = ""

    @property
    def custom(self) -> bool:
        return self.code.startswith(CUSTOM_PREFIX)


@dataclass(frozen=True)
class LogEntry:
    id: int
    ts: float
    user: str
    year: int
    van: str
    code: str
    field: str
    old: str | None
    new: str | None


# --- parsing staff input (the one boundary) ------------------------------------------------


def parse_year(text: str | int) -> int:
    s = str(text).strip()
    if not (s.isascii() and s.isdigit()) or not YEARS[0] <= int(s) <= YEARS[1]:
        raise TargetError(f"Jahr: bitte ein Jahr von {YEARS[0]} bis {YEARS[1]} angeben")
    return int(s)


_NUMBER = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?|[+-]?\d*\.\d+|[+-]?\d+\.")


def parse_number(text: str, label: str, *, hi: float = MAX_VALUE) -> float:
    """A number as staff type it: ``1234``, ``1.234,5`` (German), ``1234,5`` or
    ``1234.5``; from 0 to ``hi``."""
    s = (text or "").strip().replace("\u202f", "").replace(" ", "")
    if not s:
        raise TargetError(f"{label}: bitte eine Zahl angeben")
    if not _NUMBER.fullmatch(s):
        raise TargetError(f"{label} = {text.strip()[:20]!r}: keine Zahl (z. B. 1200 oder 87,5)")
    if "," in s:
        s = s.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+", s):
        s = s.replace(".", "")  # "1.200": German thousands
    v = float(s)
    if not math.isfinite(v):
        raise TargetError(f"{label}: keine Zahl")
    if v < 0:
        raise TargetError(f"{label} = {fmt_number(v)}: ein Ziel kann nicht unter 0 liegen")
    if v > hi:
        raise TargetError(f"{label} = {fmt_number(v)}: höchstens {fmt_number(hi)}")
    return v


def parse_profile(text: str) -> tuple[float, ...] | None:
    """Twelve monthly weights (Jan..Dez), separated by ``;`` or spaces; empty = None (pro
    rata by days). Each from 0 to 1,000,000, not all 0."""
    s = (text or "").strip()
    if not s:
        return None
    parts = [p for p in re.split(r"[;\s]+", s) if p]
    if len(parts) != 12:
        raise TargetError(
            f"Monatsprofil: genau 12 Gewichte (Jan bis Dez) mit ; getrennt angeben,"
            f" nicht {len(parts)}"
        )
    weights = tuple(
        parse_number(p, f"Monatsprofil ({MONTHS_SHORT[i]})", hi=MAX_WEIGHT)
        for i, p in enumerate(parts)
    )
    if sum(weights) <= 0:
        raise TargetError("Monatsprofil: mindestens ein Monat braucht ein Gewicht über 0")
    return weights


def parse_text(text: str, label: str, max_len: int, *, empty: bool = False) -> str:
    s = " ".join((text or "").split())
    if not s and not empty:
        raise TargetError(f"{label}: bitte angeben")
    if len(s) > max_len:
        raise TargetError(f"{label}: höchstens {max_len} Zeichen")
    if not s.isprintable() or re.search(r"[<>{}\\]", s):
        raise TargetError(f"{label}: bitte nur Buchstaben, Ziffern und einfache Satzzeichen")
    return s


def custom_code(name: str, taken: Iterable[str]) -> str:
    """A stable code for a new custom target: ``custom-<slug of its name>``."""
    from .plan import slug

    base = CUSTOM_PREFIX + slug(name)[:40].strip("-")
    taken = set(taken)
    code, i = base, 2
    while code in taken:
        code, i = f"{base}-{i}", i + 1
    return code


def fmt_number(v: float | None) -> str:
    """German: ``1.234,5``; whole numbers without decimals."""
    if v is None:
        return "–"
    if float(v).is_integer():
        return f"{int(v):,}".replace(",", ".")
    s = f"{v:,.2f}".rstrip("0").rstrip(".")
    return s.replace(",", " ").replace(".", ",").replace(" ", ".")


def fmt_profile(p: Sequence[float] | None) -> str:
    return "" if p is None else "; ".join(fmt_number(w) for w in p)


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


__all__ = [
    "LogEntry",
    "MONTHS_SHORT",
    "Target",
    "TargetError",
    "actuals",
    "copy_year",
    "custom_code",
    "fmt_number",
    "fmt_profile",
    "log",
    "parse_number",
    "parse_profile",
    "parse_text",
    "parse_year",
    "remove",
    "save",
    "save_actuals",
    "targets",
    "years_with_targets",
]
