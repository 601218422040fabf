"""Staff's input for the targets (:mod:`telemetry.targets`), checked once, here: the
``parse_*`` functions turn the text of a form field into a value or raise
:class:`~telemetry.targets_model.TargetError` with a German message naming the field;
:func:`custom_code` names a new custom target; ``fmt_*`` write numbers and monthly
profiles the German way (for the page and the change log)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from .targets_model import CUSTOM_PREFIX, MAX_VALUE, MAX_WEIGHT, MONTHS_SHORT, YEARS, TargetError

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
