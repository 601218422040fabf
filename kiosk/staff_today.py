"""The staff area's start page: today at a glance (``/staff/``), and its live tiles
(``/staff/today/tiles``) that the page fetches again every minute."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for

from telemetry import registry, reports
from telemetry.plan import Plan, plan_vans

from . import appctx
from .staff_params import _show_vans, _van_arg
from .timetable import van_plan

REFRESH_S = 60


def register(bp: Blueprint) -> None:
    """Add the today page's routes to the staff blueprint (``staff.today``,
    ``staff.today_tiles``)."""
    bp.add_url_rule("/", "today", today, methods=["GET"])
    bp.add_url_rule("/today/tiles", "today_tiles", today_tiles, methods=["GET"])


def _today_plans(van: str | None, vans: list[str]) -> list[Plan]:
    """The plans the today page reads: ``van``'s, or for the whole fleet every van's that
    has data or a stored plan and is not retired (on a box, its own van's too). Each is the
    van's current plan (:func:`kiosk.timetable.van_plan`: the TOML tour stands in only for
    the box's own van)."""
    if van is not None:
        return [van_plan(van)]
    st = appctx.store()
    ids = set(vans) | set(plan_vans(st))
    if appctx.mode() != "hub":
        ids.add(appctx.config().van["id"])
    ids -= {v.id for v in registry.all_vans(st) if v.state == "retired"}
    return [van_plan(v) for v in sorted(ids)]


def _today_context() -> dict:
    cfg = appctx.config()
    van, vans = _van_arg()
    now = appctx.now()
    q = {"van": van} if van else {}
    return dict(
        f=reports.today(appctx.store().reader(), now, cfg.tz, van=van,
                        plans=_today_plans(van, vans), crew=cfg.reports["crew"]),
        now=now.astimezone(cfg.tz), van=van, vans=vans, show_vans=_show_vans(vans), q=q,
    )  # fmt: skip


def today():
    ctx = _today_context()
    q = ctx.pop("q")
    return render_template(
        "staff/today.html", **ctx, page="today", refresh_s=REFRESH_S,
        tiles_url=url_for("staff.today_tiles", auto=1, **q),
        login_url=url_for("staff.login", why="expired", next=url_for("staff.today", **q)),
        day_url=url_for("staff.report", name="summary", p="day",
                        d=ctx["now"].date().isoformat(), **q),
    )  # fmt: skip


def today_tiles():
    """The live part of the today page, fetched by today.js every minute (with ?auto=1,
    so an unattended page does not keep the session alive)."""
    ctx = _today_context()
    ctx.pop("q")
    return render_template("staff/_today_tiles.html", **ctx)
