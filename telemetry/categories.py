"""The closed code lists of vanbox: what a check-in or a count may say, nothing else.

The kiosk shows translated labels for these codes; the store, the wire format and the
reports only ever hold the codes. The hub refuses any other value at its boundary
(:func:`telemetry.topics.decode`), so no free text is ever stored.
"""

from __future__ import annotations

# Age groups of the check-in (15 to 27, the project's target group, or not said).
AGE_GROUPS: tuple[str, ...] = ("15-17", "18-20", "21-24", "25-27", "unsaid")
# What a visitor came about (several may be chosen).
TOPICS: tuple[str, ...] = (
    "school",
    "training",
    "job",
    "money",
    "housing",
    "family",
    "health",
    "papers",
    "talk",
    "other",
)
# How a first-time visitor heard of the van.
HEARD_FROM: tuple[str, ...] = (
    "friends",
    "school",
    "social_media",
    "youth_worker",
    "poster",
    "other",
)
# The kiosk's languages (ISO 639-1), as in ``kiosk.i18n.LANGUAGES``.
LANGUAGES: tuple[str, ...] = ("de", "en", "tr", "ar", "uk", "ru", "fa")
# The door sensors that produce footfall events (``sensor.kind`` "none" produces none).
SENSORS: tuple[str, ...] = ("door", "beam", "beam-pair")
