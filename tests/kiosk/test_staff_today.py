"""The staff today page reads each van's own current plan for the planned stop: on a hub
with several vans each van's page shows its own, the fleet view shows every van's, a
cancelled visit is not planned (it "fällt aus"), a delayed one starts later, and the
config's tour stands in only for the van the config describes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from datetime import time as dtime
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from telemetry import registry
from telemetry.clock import ScaledClock
from telemetry.config import default_config
from telemetry.events import StopVisit
from telemetry.plan import PlanException, PlanStop, change_plan, new_id
from telemetry.store import Store
from tests.kiosk.test_staff_reports import client_of as staff_client

TZ = ZoneInfo("Europe/Berlin")
PASSWORD = "heute-passwort-1"
OWN, VAN_B, VAN_C = "jungregio-1", "jungregio-2", "jungregio-3"  # OWN: the config's van
MON = date(2026, 11, 9)  # the config's tour: Peine, Marktplatz on Mondays 10-13


def at(d: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(d.year, d.month, d.day, h, m, tzinfo=TZ).astimezone(UTC)


def stop(key: str, name: str, muni: str, lat: float, lon: float) -> PlanStop:
    return PlanStop(key, name, muni, lat, lon, 150.0, (0,), dtime(10, 0), dtime(13, 0))


ILSEDE = stop("ilsede", "Ilsede, Gebläsehalle", "Ilsede", 52.263, 10.184)
VECHELDE = stop("vechelde", "Vechelde, Bahnhof", "Vechelde", 52.261, 10.366)


def make_app(tmp_path, mode: str, vans: tuple[str, ...]):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "reports": {"crew": 0}})
    assert cfg.van["id"] == OWN
    # Each van has data (a visit last Monday), none is at a stop now.
    last = date(2026, 11, 2)
    visits = [StopVisit(at(last, "10:00"), "Peine, Marktplatz", "Peine", 52.32, 10.23,
                        left=at(last, "12:00"), van=v) for v in vans]  # fmt: skip
    if mode == "hub":
        store = Store(tmp_path / "hub.db", van="", tz=cfg.timezone)
        store.ingest_many(visits)
    else:
        store = Store(tmp_path / "box.db", van=OWN, tz=cfg.timezone)
        store.record_many(visits)
    app = create_app({"TESTING": True}, config=cfg, store=store, mode=mode)
    set_clock(app, at(MON, "11:00"))
    return app, store


def set_clock(app, now: datetime) -> None:
    app.extensions["vanbox_clock"] = ScaledClock(now, speed=1.0)


def client_of(app):
    return staff_client(app, PASSWORD)


def plan_line(c, query: str = "") -> str:
    """The today page's plan line (and the same in the tiles fetched every minute)."""
    found = []
    for url in (f"/staff/{query}", f"/staff/today/tiles?auto=1{query.replace('?', '&')}"):
        r = c.get(url)
        assert r.status_code == 200, url
        m = re.search(r'<div class="sub" id="today-plan">(.*?)</div>', r.text, re.S)
        assert m is not None, url
        found.append(" ".join(unescape(m.group(1)).split()))
    assert found[0] == found[1]
    return found[0]


def with_stop(store, van: str, s: PlanStop) -> None:
    change_plan(store, van, lambda p: p.with_stop(s))


def with_exception(store, van: str, **kw) -> None:
    change_plan(store, van, lambda p: p.with_exception(PlanException(new_id(), date=MON, **kw)))


@pytest.fixture
def hub(tmp_path):
    app, store = make_app(tmp_path, "hub", (OWN, VAN_B, VAN_C))
    with_stop(store, OWN, ILSEDE)  # the config's van, with a stored plan unlike the TOML tour
    with_stop(store, VAN_B, VECHELDE)
    yield app, store  # VAN_C has no stored plan
    store.close()


def test_each_van_shows_its_own_planned_stop(hub):
    app, store = hub
    c = client_of(app)
    assert plan_line(c, f"?van={OWN}") == "laut Tourplan jetzt: Ilsede, Gebläsehalle"
    assert plan_line(c, f"?van={VAN_B}") == "laut Tourplan jetzt: Vechelde, Bahnhof"
    # No stored plan: the config's tour (Peine on Mondays) is not this van's plan.
    assert plan_line(c, f"?van={VAN_C}") == "laut Tourplan jetzt kein Halt"
    assert plan_line(c) == (
        f"laut Tourplan jetzt: Ilsede, Gebläsehalle ({OWN}), Vechelde, Bahnhof ({VAN_B})"
    )
    set_clock(app, at(MON, "14:00"))
    assert plan_line(c) == "laut Tourplan jetzt kein Halt"
    assert plan_line(c, f"?van={VAN_B}") == "laut Tourplan jetzt kein Halt"


def test_a_cancelled_stop_is_not_planned(hub):
    app, store = hub
    with_exception(store, OWN, kind="cancel", stop_key="ilsede", reason="Werkstatt")
    c = client_of(app)
    assert plan_line(c, f"?van={OWN}") == (
        "laut Tourplan jetzt kein Halt · Ilsede, Gebläsehalle fällt aus: Werkstatt"
    )
    assert plan_line(c, f"?van={VAN_B}") == "laut Tourplan jetzt: Vechelde, Bahnhof"
    assert plan_line(c) == (
        f"laut Tourplan jetzt: Vechelde, Bahnhof ({VAN_B})"
        f" · Ilsede, Gebläsehalle ({OWN}) fällt aus: Werkstatt"
    )
    # A week later the visit takes place again.
    set_clock(app, at(date(2026, 11, 16), "11:00"))
    assert plan_line(c, f"?van={OWN}") == "laut Tourplan jetzt: Ilsede, Gebläsehalle"


def test_a_delayed_stop_says_so_from_its_planned_start(hub):
    """Planned 10:00, 90 minutes late: at 11:00 (the page's clock) staff read that it is
    delayed and from when, not "no stop"; at 11:45 the same."""
    app, store = hub
    with_exception(store, VAN_B, kind="delay", stop_key="vechelde", delay_min=90)
    c = client_of(app)
    assert plan_line(c, f"?van={VAN_B}") == (
        "laut Tourplan jetzt: Vechelde, Bahnhof (verspätet, ab 11:30 Uhr)"
    )
    assert plan_line(c) == (
        f"laut Tourplan jetzt: Ilsede, Gebläsehalle ({OWN}), Vechelde, Bahnhof ({VAN_B})"
        " (verspätet, ab 11:30 Uhr)"
    )
    set_clock(app, at(MON, "11:45"))
    assert plan_line(c, f"?van={VAN_B}") == (
        "laut Tourplan jetzt: Vechelde, Bahnhof (verspätet, ab 11:30 Uhr)"
    )


def test_a_retired_van_is_not_in_the_fleet_view(hub):
    app, store = hub
    c = client_of(app)
    assert f"({VAN_B})" in plan_line(c)
    registry.register(store, [OWN, VAN_B, VAN_C])
    registry.retire(store, VAN_B)
    assert plan_line(c) == f"laut Tourplan jetzt: Ilsede, Gebläsehalle ({OWN})"


def test_on_a_box_the_toml_tour_is_the_plan_until_one_is_stored(tmp_path):
    app, store = make_app(tmp_path, "box", (OWN,))
    try:
        c = client_of(app)
        assert plan_line(c) == "laut Tourplan jetzt: Peine, Marktplatz"
        cancel = PlanException(new_id(), "cancel", MON, stop_key="peine-marktplatz",
                               reason="Feiertag")  # fmt: skip
        tour = app.extensions["vanbox_config"].tour
        change_plan(store, OWN, lambda p: p.with_exception(cancel), fallback_tour=tour)
        assert plan_line(c) == (
            "laut Tourplan jetzt kein Halt · Peine, Marktplatz fällt aus: Feiertag"
        )
    finally:
        store.close()
