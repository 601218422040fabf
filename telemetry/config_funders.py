"""Validation of the funders' configuration: counselling contact codes and report data.

Called from :func:`telemetry.config_build._build` so config.py stays small. Checks

- ``[contacts]``: ``kinds``, ``partners`` and ``outcomes``, each a list of
  ``{code, label}`` tables (partners may carry ``active = false``: kept for old records,
  not offered in the form). Codes are stable ASCII slugs ``[a-z0-9-]{1,32}``;
- ``[reports]``: ``town`` (one of ``municipalities``), ``municipalities`` (names),
  ``funders`` (``{name, eur}``; their sum is the year's budget) and ``crew`` (staff on
  board per service, 0..10).

Every problem raises :class:`ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import ConfigError

CODE_RE = re.compile(r"[a-z0-9-]{1,32}")
MAX_CODES = 100  # entries in one code list
MAX_LABEL = 80  # characters in a label or a name
MAX_EUR = 1e9

DEFAULT_KINDS = [
    {"code": "kurz", "label": "Kurzkontakt"},
    {"code": "beratung", "label": "Beratung"},
    {"code": "begleitung", "label": "Begleitung"},
    {"code": "hausbesuch", "label": "Hausbesuch"},
    {"code": "gruppe", "label": "Gruppenangebot"},
    {"code": "online", "label": "Online-Beratung"},
    {"code": "telefon", "label": "Telefonberatung"},
]
DEFAULT_PARTNERS = [
    {"code": "jobcenter", "label": "Jobcenter"},
    {"code": "jba", "label": "Jugendberufsagentur"},
    {"code": "jugendamt", "label": "Jugendamt"},
    {"code": "schuldnerberatung", "label": "Schuldnerberatung"},
    {"code": "migrationsberatung", "label": "Migrationsberatung"},
    {"code": "suchtberatung", "label": "Suchtberatung"},
    {"code": "schule", "label": "Schule"},
]
DEFAULT_OUTCOMES = [
    {"code": "geklaert", "label": "Anliegen geklärt"},
    {"code": "folgetermin", "label": "Folgetermin vereinbart"},
    {"code": "vermittelt", "label": "An Partner vermittelt"},
    {"code": "offen", "label": "Offen"},
]


def _fail(key: str, value: Any, why: str) -> ConfigError:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return ConfigError(f"{key} = {text}: {why}")


def _label(v: Any, key: str) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > MAX_LABEL or not v.isprintable():
        raise _fail(key, v, f"give a printable text of 1 to {MAX_LABEL} characters")
    return v


def check_codes(items: Any, key: str, *, retire: bool = False) -> list[dict[str, Any]]:
    """A checked list of ``{code, label[, active]}``; codes unique slugs."""
    extra = ", active" if retire else ""
    if not isinstance(items, list) or not items or len(items) > MAX_CODES:
        raise _fail(key, items, f"a list of 1 to {MAX_CODES} {{code, label{extra}}} tables")
    seen: set[str] = set()
    out = []
    for i, it in enumerate(items):
        k = f"{key}[{i}]"
        if not isinstance(it, dict):
            raise _fail(k, it, f'a table like {{code = "x", label = "X"{extra}}}')
        allowed = {"code", "label"} | ({"active"} if retire else set())
        unknown = set(it) - allowed
        if unknown:
            raise ConfigError(f"{k}.{sorted(unknown)[0]}: unknown key; use code, label{extra}")
        code = it.get("code")
        if not isinstance(code, str) or not CODE_RE.fullmatch(code):
            raise _fail(f"{k}.code", code, "a stable code of 1-32 a-z, 0-9 or -")
        if code in seen:
            raise _fail(f"{k}.code", code, "used twice; every code must be unique")
        seen.add(code)
        entry: dict[str, Any] = {"code": code, "label": _label(it.get("label"), f"{k}.label")}
        if retire:
            active = it.get("active", True)
            if not isinstance(active, bool):
                raise _fail(f"{k}.active", active, "must be true or false")
            entry["active"] = active
        out.append(entry)
    return out


def check_contacts(sec: dict[str, Any]) -> dict[str, Any]:
    """The checked ``[contacts]`` section."""
    out = {
        "kinds": check_codes(sec["kinds"], "contacts.kinds"),
        "partners": check_codes(sec["partners"], "contacts.partners", retire=True),
        "outcomes": check_codes(sec["outcomes"], "contacts.outcomes"),
    }
    if not any(p["active"] for p in out["partners"]):
        raise _fail("contacts.partners", sec["partners"], "keep at least one partner active")
    return out


def _eur(v: Any, key: str) -> float:
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    if ok and isinstance(v, int) and v.bit_length() > 64:
        ok = False
    if not ok or not math.isfinite(v) or not 0 <= v <= MAX_EUR:
        raise _fail(key, v, f"an amount in euro from 0 to {MAX_EUR:.0f}")
    return float(v)


def check_reports(sec: dict[str, Any]) -> dict[str, Any]:
    """The checked funders' keys of ``[reports]`` (``annual_budget_eur`` is checked by
    config.py before). When funders are given, ``annual_budget_eur`` becomes their sum."""
    munis = sec["municipalities"]
    if (
        not isinstance(munis, list)
        or not munis
        or len(munis) > MAX_CODES
        or not all(isinstance(m, str) for m in munis)
    ):
        raise _fail("reports.municipalities", munis, 'a list of names, e.g. ["Peine", "Ilsede"]')
    for i, m in enumerate(munis):
        _label(m, f"reports.municipalities[{i}]")
        if m == "outside":
            raise _fail(f"reports.municipalities[{i}]", m, '"outside" is reserved')
    if len(set(munis)) != len(munis):
        raise _fail("reports.municipalities", munis, "a name appears twice")
    town = sec["town"]
    if not isinstance(town, str) or town not in munis:
        raise _fail("reports.town", town, "must be one of reports.municipalities")
    funders = sec["funders"]
    if not isinstance(funders, list) or len(funders) > MAX_CODES:
        raise _fail("reports.funders", funders, 'a list of {name = "...", eur = 0.0} tables')
    names: set[str] = set()
    checked = []
    for i, f in enumerate(funders):
        k = f"reports.funders[{i}]"
        if not isinstance(f, dict) or set(f) != {"name", "eur"}:
            raise _fail(k, f, 'a table {name = "Jugendamt", eur = 21493.17}')
        name = _label(f["name"], f"{k}.name")
        if name in names:
            raise _fail(f"{k}.name", name, "named twice")
        names.add(name)
        checked.append({"name": name, "eur": _eur(f["eur"], f"{k}.eur")})
    crew = sec["crew"]
    if isinstance(crew, bool) or not isinstance(crew, int) or not 0 <= crew <= 10:
        raise _fail("reports.crew", crew, "staff on board per service: a whole number 0 to 10")
    budget = float(sec["annual_budget_eur"])
    if checked:
        total = round(sum(f["eur"] for f in checked), 2)
        if budget > 0 and abs(budget - total) > 0.005:
            raise _fail(
                "reports.annual_budget_eur",
                sec["annual_budget_eur"],
                f"differs from the sum of reports.funders ({total:.2f}); "
                "give one of them or make them agree",
            )
        budget = total
    return {**sec, "funders": checked, "annual_budget_eur": budget}
