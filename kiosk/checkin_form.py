"""The check-in's steps and the strict check of every post (400 on anything odd).

Each step's post carries the answers so far in hidden fields (no session): a bad CSRF
token (checked by :mod:`kiosk.csrf`), an unknown field, an unknown code or a field in the
wrong step is a 400 and nothing is stored. The codes are those of
:mod:`telemetry.categories`; their translated labels are the screens' (:mod:`kiosk.checkin`).
"""

from __future__ import annotations

import re

from flask import abort, request

from telemetry import categories

from . import csrf

FIRST_VISIT = {"yes": True, "no": False, "unsaid": None}
SKIP = "skip"
GROUP_SIZES = tuple(str(n) for n in range(1, categories.GROUP_SIZE_MAX + 1))

# Which fields each step's post must and may carry (besides csrf_token, flow, step, back).
# The age screen may carry topics and group size too: it is shown again after "back".
STEPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "age": (frozenset({"age"}), frozenset({"age", "topic", "group"})),
    "topics": (frozenset({"age"}), frozenset({"age", "topic", "group"})),
    "visit": (
        frozenset({"age", "first_visit"}),
        frozenset({"age", "topic", "group", "first_visit"}),
    ),
    "heard": (
        frozenset({"age", "first_visit", "heard_from"}),
        frozenset({"age", "topic", "group", "first_visit", "heard_from"}),
    ),
}
# The answer each step's own buttons give: a "back" post comes without it.
OWN_ANSWER = {"age": "age", "topics": "topic", "visit": "first_visit", "heard": "heard_from"}
PREVIOUS = {"topics": "age", "visit": "topics", "heard": "visit"}
# The steps as the counter shows them: the fourth (how heard) only follows a first visit,
# so the counter says "of 4" throughout and a visitor may finish after the third.
STEP_NO = {"age": 1, "topics": 2, "visit": 3, "heard": 4}
STEP_TOTAL = 4
ALWAYS = frozenset({csrf.FIELD, "flow", "step"})
FIELDS = frozenset({"age", "topic", "group", "first_visit", "heard_from", "back"})
FLOW_RE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")


# --- request checking ----------------------------------------------------------------


def _one(name: str) -> str | None:
    values = request.form.getlist(name)
    if len(values) > 1:
        abort(400)
    return values[0] if values else None


def _parse() -> tuple[str, str, dict]:
    """The posted step, flow id and answers, strictly checked (400 on anything odd)."""
    form = request.form
    if request.files or not set(form) <= ALWAYS | FIELDS:
        abort(400)
    step, flow = _one("step"), _one("flow")
    if step not in STEPS or flow is None or not FLOW_RE.match(flow):
        abort(400)
    back = _one("back")
    if back not in (None, "1") or (back and step not in PREVIOUS):
        abort(400)
    required, allowed = STEPS[step]
    if back:  # "Zurück": the step's own answer is not given
        required = required - {OWN_ANSWER[step]}
        allowed = allowed - {OWN_ANSWER[step]} | ({"topic"} if step == "topics" else set())
    present = set(form) - ALWAYS - {"back"}
    if not required <= present or not present <= allowed:
        abort(400)
    age = _one("age")
    if age not in categories.AGE_GROUPS:
        abort(400)
    topics = form.getlist("topic")
    if len(set(topics)) != len(topics) or not set(topics) <= set(categories.TOPICS):
        abort(400)
    group = _one("group") or "1"
    if group not in GROUP_SIZES:
        abort(400)
    answers: dict = {
        "age": age,
        "topics": tuple(t for t in categories.TOPICS if t in topics),
        "group": int(group),
        "back": bool(back),
    }
    if "first_visit" in required:
        fv = _one("first_visit")
        if fv not in FIRST_VISIT:
            abort(400)
        answers["first_visit"] = fv
    if "heard_from" in required:
        hf = _one("heard_from")
        if answers["first_visit"] != "yes" or (hf not in categories.HEARD_FROM and hf != SKIP):
            abort(400)
        answers["heard_from"] = None if hf == SKIP else hf
    return step, flow, answers
