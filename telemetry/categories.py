"""The closed code lists of vanbox: what a check-in or a count may say, nothing else.

The kiosk shows translated labels for these codes; the store, the wire format and the
reports only ever hold the codes. The hub refuses any other value at its boundary
(:func:`telemetry.topics.decode`), so no free text is ever stored.
"""

from __future__ import annotations

# Age groups of the check-in: the project's target group (15 to 27) in four bands, younger
# or older visitors (they come too, and must be able to say so), or not said. Codes are
# only ever added: the hub accepts every code an older box may still send.
AGE_GROUPS: tuple[str, ...] = (
    "under-15",
    "15-17",
    "18-20",
    "21-24",
    "25-27",
    "over-27",
    "unsaid",
)
# How many people one check-in may stand for ("Wir sind zu ___"): the kiosk records one
# check-in per person, so the wire format and the reports need nothing new.
GROUP_SIZE_MAX = 6
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
