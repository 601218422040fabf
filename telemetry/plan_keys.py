"""Stable keys of a plan's places (from their names, unique within the plan) and ids
of its exceptions (see telemetry/plan.py)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable

from .errors import PlanError

_TRANS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def slug(text: str) -> str:
    """A stable key from a stop name: "Peine, Marktplatz" -> "peine-marktplatz"."""
    s = unicodedata.normalize("NFKD", text.lower().translate(_TRANS))
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")[:40].strip("-")
    return s or "halt"


def unique_key(key: str, taken: Iterable[str]) -> str:
    """``key`` if it is free, else the first free ``<key>-2``, ``<key>-3``, ... (the key
    shortened to 36 characters)."""
    taken = set(taken)
    if key not in taken:
        return key
    for i in range(2, 10_000):
        cand = f"{key[:36]}-{i}"
        if cand not in taken:
            return cand
    raise PlanError("stops: too many stops with the same name")


def new_id() -> str:
    """A new exception id (a UUID4 in lower case with dashes)."""
    return str(uuid.uuid4())
