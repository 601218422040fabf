"""Each van's tour plan: a weekly template of stops plus dated exceptions, versioned.

The hub is the system of record: staff edit a van's plan there (``kiosk/staff_plan.py``),
every saved change is a new version (``plans`` table, migration 0006), and the plan's
JSON (:meth:`Plan.to_json`) is published retained on ``<prefix>/<van>/plan``. The box
stores each newer version it receives and uses the newest one for the kiosk's next stops,
stop detection and the public map; without any, the ``[[tour.stops]]`` of the TOML are the
initial plan (:meth:`Plan.from_tour`).

Exceptions (:class:`PlanException`), all for one dated visit of a stop unless noted:

- ``cancel``: the visit does not take place (``reason`` is public);
- ``delay``: it starts ``delay_min`` minutes late (1..600; the end stays);
- ``move``: it takes place on ``new_date`` from ``start`` to ``end`` instead;
- ``extra``: a one-off visit (festival, school day) at ``stop`` on ``date``;
- ``closed``: no visits from ``date`` to ``date_to`` (holidays), with a public reason.

:meth:`Plan.visits_between` applies them and gives :class:`PlannedVisit` s with stable
uids (for iCalendar) and a ``sequence`` raised whenever a visit changes. Cancelled visits
are included (status ``"cancelled"``) so the public can read "fällt aus".

A weekly stop may have a validity range (``valid_from``/``valid_to``, both optional:
without them it is in force always, as in plans written before they existed). Staff
changes of a stop's weekdays or times, and its removal, end the stop the day before they
take effect and (for a change) start a successor (:meth:`Plan.with_stop_from`,
:meth:`Plan.without_stop_from`), so past weeks stay as they were planned.

Bad input raises :class:`~telemetry.errors.PlanError` naming the field; nothing is saved.

This module is the front door; the work is done in:

- :mod:`telemetry.plan_model`: the dataclasses and the plan's editing methods;
- :mod:`telemetry.plan_history`: changes from a day on that keep the past;
- :mod:`telemetry.plan_keys`: stop keys and exception ids;
- :mod:`telemetry.plan_limits`: sizes, formats and the Landkreis' bounds;
- :mod:`telemetry.plan_rules`: the rules every plan keeps;
- :mod:`telemetry.plan_json`: the JSON;
- :mod:`telemetry.plan_visits`: the visits on real dates, exceptions applied;
- :mod:`telemetry.plan_store`: storing and reading plans, the box's receipt of them.
"""

from __future__ import annotations

from .config import WEEKDAYS as WEEKDAYS
from .plan_keys import new_id as new_id
from .plan_keys import slug as slug
from .plan_keys import unique_key as unique_key
from .plan_limits import DELAY_MAX as DELAY_MAX
from .plan_limits import DELAY_MIN as DELAY_MIN
from .plan_limits import KEEP_PAST_DAYS as KEEP_PAST_DAYS
from .plan_limits import KEY_RE as KEY_RE
from .plan_limits import KINDS as KINDS
from .plan_limits import LANDKREIS_BBOX as LANDKREIS_BBOX
from .plan_limits import MARGIN_KM as MARGIN_KM
from .plan_limits import MAX_CLOSED_DAYS as MAX_CLOSED_DAYS
from .plan_limits import MAX_EXCEPTIONS as MAX_EXCEPTIONS
from .plan_limits import MAX_JSON as MAX_JSON
from .plan_limits import MAX_SPAN_DAYS as MAX_SPAN_DAYS
from .plan_limits import MAX_STOPS as MAX_STOPS
from .plan_limits import NAME_MAX as NAME_MAX
from .plan_limits import RADIUS_M as RADIUS_M
from .plan_limits import REASON_MAX as REASON_MAX
from .plan_limits import STATUSES as STATUSES
from .plan_limits import VAN_RE as VAN_RE
from .plan_limits import YEARS as YEARS
from .plan_limits import in_landkreis as in_landkreis
from .plan_model import Plan as Plan
from .plan_model import PlanException as PlanException
from .plan_model import PlannedVisit as PlannedVisit
from .plan_model import PlanStop as PlanStop
from .plan_model import validate as validate
from .plan_store import CLOCK_SLACK_S as CLOCK_SLACK_S
from .plan_store import change_plan as change_plan
from .plan_store import clear_cache as clear_cache
from .plan_store import current_plan as current_plan
from .plan_store import is_newer as is_newer
from .plan_store import plan_vans as plan_vans
from .plan_store import receive_plan as receive_plan
from .plan_store import save_plan as save_plan
from .plan_store import stored_plan as stored_plan
from .plan_store import stored_version as stored_version

__all__ = [
    "KINDS", "LANDKREIS_BBOX", "Plan", "PlanException", "PlanStop", "PlannedVisit",
    "STATUSES", "WEEKDAYS", "change_plan", "current_plan", "in_landkreis", "new_id",
    "is_newer", "plan_vans", "receive_plan", "save_plan", "slug", "stored_plan",
    "unique_key", "validate",
]  # fmt: skip
