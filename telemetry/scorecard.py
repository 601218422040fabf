"""The balanced scorecard: the year's figures per month, and each target's evaluation.

The parts (every public name is importable from here):

- :mod:`telemetry.scorecard_figures`: the figures a target can be set for, by
  perspective (reach, process, network, custom), and a figure's 12 months;
- :mod:`telemetry.scorecard_collect`: how each figure is counted for a year, of one van
  or all vans, up to a moment (:func:`collect`), with the tour plan's visits served and
  punctual from :mod:`telemetry.scorecard_served`;
- :mod:`telemetry.scorecard_evaluate`: a target against its figure: expected to date,
  forecast, traffic light and trend chart (:func:`evaluate`).
"""

from __future__ import annotations

from .scorecard_collect import Data as Data
from .scorecard_collect import collect as collect
from .scorecard_evaluate import GREEN as GREEN
from .scorecard_evaluate import LIGHTS as LIGHTS
from .scorecard_evaluate import YELLOW as YELLOW
from .scorecard_evaluate import Result as Result
from .scorecard_evaluate import custom_until as custom_until
from .scorecard_evaluate import elapsed as elapsed
from .scorecard_evaluate import evaluate as evaluate
from .scorecard_evaluate import light_of as light_of
from .scorecard_evaluate import months_counted as months_counted
from .scorecard_figures import PERSPECTIVES as PERSPECTIVES
from .scorecard_figures import PUNCTUAL_MIN as PUNCTUAL_MIN
from .scorecard_figures import Figure as Figure
from .scorecard_figures import Monthly as Monthly
from .scorecard_figures import custom_figure as custom_figure
from .scorecard_figures import custom_monthly as custom_monthly
from .scorecard_figures import figures as figures
from .scorecard_served import MATCH_BEFORE_S as MATCH_BEFORE_S
from .scorecard_served import end_day as end_day
