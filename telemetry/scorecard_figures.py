"""What the scorecard's figures are, and a figure's 12 months.

:func:`figures` lists every figure a target can be set for, in page order, by
perspective (:data:`PERSPECTIVES`): code, label, unit, kind (a sum, a share in % or a
level that only grows) and the hint shown on the page; :func:`custom_figure` is the
figure of a target of the staff's own. :class:`Monthly` holds one figure's months and
totals them; :func:`custom_monthly` is that of a custom target's entered actuals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .targets import MAX_VALUE, Target

PUNCTUAL_MIN = 10
PERSPECTIVES = {
    "reach": "Reichweite",
    "process": "Prozesse",
    "network": "Netzwerk",
    "custom": "Eigene Ziele",
}


@dataclass(frozen=True)
class Figure:
    code: str
    perspective: str
    label: str
    unit: str
    kind: str  # sum | rate (a share in %) | level (a count that only grows)
    hint: str
    max_value: float = MAX_VALUE
    lower_better: bool = False


def figures(town: str, municipalities: Sequence[str], partners: Iterable[dict]) -> list[Figure]:
    """Every figure a target can be set for (custom targets aside), in page order."""
    out = [
        Figure(
            "contacts",
            "reach",
            "Beratungskontakte",
            "Personen",
            "sum",
            "Von den Mitarbeitenden erfasste Beratungskontakte: Summe der erreichten"
            " Personen (ein Gruppenangebot zählt jede Person).",
        ),
        Figure(
            "first-contacts",
            "reach",
            "Erstkontakte",
            "Personen",
            "sum",
            "Beratungskontakte, die als Erstkontakt erfasst wurden (Personen).",
        ),
        Figure(
            "rural-share",
            "reach",
            "Anteil ländlicher Raum",
            "%",
            "rate",
            f"Personen aus den Gemeinden des Landkreises außer {town} je Person aller"
            " Beratungskontakte (Wohnort außerhalb des Landkreises zählt nicht als"
            " ländlich).",
            100.0,
        ),
        Figure(
            "municipalities",
            "reach",
            "Erreichte Gemeinden",
            "Gemeinden",
            "level",
            "Gemeinden des Landkreises, aus denen in diesem Jahr mindestens ein"
            " Beratungskontakt kam.",
            float(len(municipalities)),
        ),
        Figure(
            "served",
            "process",
            "Halte bedient",
            "% der geplanten",
            "rate",
            "Termine des Tourplans, die schon vorbei sind und bedient wurden (Halt"
            " erkannt), je geplantem Termin; abgesagte Termine und Schließzeiten zählen"
            " nicht als geplant.",
            100.0,
        ),
        Figure(
            "hours",
            "process",
            "Einsatzstunden",
            "Stunden",
            "sum",
            "Zeit an Haltestellen (auch ungeplante Halte) von der Ankunft bis zur Abfahrt.",
        ),
        Figure(
            "punctuality",
            "process",
            "Pünktlichkeit",
            "%",
            "rate",
            f"Anteil der bedienten Termine, an denen der Bus spätestens {PUNCTUAL_MIN}"
            " Minuten nach dem angekündigten Beginn ankam (eine angekündigte Verspätung"
            " verschiebt den Beginn).",
            100.0,
        ),
    ]
    for p in partners:
        out.append(
            Figure(
                f"referrals-{p['code']}",
                "network",
                f"Vermittlungen: {p['label']}",
                "Vermittlungen",
                "sum",
                f"Beratungskontakte mit einer Vermittlung an {p['label']} (je Kontakt eine).",
            )
        )
    return out


def custom_figure(t: Target) -> Figure:
    direction = "niedriger ist besser" if t.lower_better else "höher ist besser"
    return Figure(
        t.code,
        "custom",
        t.label,
        t.unit,
        "sum",
        f"Eigenes Ziel; die Ist-Werte tragen die Mitarbeitenden je Monat ein ({direction}).",
        MAX_VALUE,
        t.lower_better,
    )


# --- a figure's months ----------------------------------------------------------------------


@dataclass(frozen=True)
class Monthly:
    """One figure's 12 months: ``num`` (a sum, a level at the month's end, or a share's
    numerator) and, for a share, its denominator ``den``."""

    num: tuple[float, ...]
    den: tuple[float, ...] | None = None

    def total(self, kind: str, upto: int = 12) -> float | None:
        """The figure over months 1..upto: the sum, the share in % or the level."""
        if kind == "level":
            return self.num[upto - 1] if upto else 0.0
        n = sum(self.num[:upto])
        if kind == "rate":
            d = sum((self.den or ())[:upto])
            return 100.0 * n / d if d else None
        return n

    def month(self, kind: str, m: int) -> float | None:
        if kind == "rate":
            d = (self.den or (0,) * 12)[m - 1]
            return 100.0 * self.num[m - 1] / d if d else None
        return self.num[m - 1]


def _months() -> list[float]:
    return [0.0] * 12


def custom_monthly(values: dict[int, float]) -> Monthly:
    return Monthly(tuple(float(values.get(m, 0.0)) for m in range(1, 13)))
