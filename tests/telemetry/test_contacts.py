"""Counselling contacts (telemetry/contacts.py): the one validation of the staff form and
the hub's decoder, its bounds (Hypothesis over both), the time rounded down to the hour,
the config's code lists and their errors, the tally and the retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from telemetry import categories, contacts, kinds, topics
from telemetry.config import default_config
from telemetry.contacts import DURATIONS, PERSONS_MAX, ContactError, validate
from telemetry.errors import ConfigError, PayloadError
from telemetry.events import CheckIn, Contact, new_hub_contact_id, to_epoch
from telemetry.retention import prune
from telemetry.store import Store
from telemetry.tally import day_counts

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
NOW = to_epoch(T0) + 3600
VAN = "van-c"
TOPIC = f"vanbox/{VAN}/contact"
GOOD = {
    "kind": "beratung",
    "topics": ["job", "money"],
    "duration": "15-30",
    "age_group": "18-20",
    "municipality": "Ilsede",
    "first_contact": True,
    "persons": 1,
    "referrals": ["jobcenter"],
    "outcome": "vermittelt",
}
FORM = {**GOOD, "first_contact": "1", "persons": "1"}


def payload(**over) -> str:
    d = {"id": "3b1f4a5e-8c2d-4e6f-9a0b-1c2d3e4f5a6b", "tst": int(to_epoch(T0)), **GOOD}
    d.update(over)
    return topics.dumps({k: v for k, v in d.items() if v is not ...})


def form(**over) -> MultiDict:
    d = {**FORM, **over}
    md = MultiDict()
    for k, v in d.items():
        for x in v if isinstance(v, list) else [v]:
            md.add(k, x)
    return md


@pytest.fixture
def retired_schule():
    """Config where the partner "schule" is retired and a "tafel" partner was added."""
    partners = [*default_config().contacts["partners"]]
    partners = [{**p, "active": False} if p["code"] == "schule" else p for p in partners] + [
        {"code": "tafel", "label": "Tafel"}
    ]
    old = contacts.current()
    codes = contacts.configure(default_config({"contacts": {"partners": partners}}))
    yield codes
    contacts._codes = old


# --- the one validation -----------------------------------------------------------------


def test_a_good_contact_passes_form_and_wire_alike():
    want = {**GOOD, "topics": ("job", "money"), "referrals": ("jobcenter",)}
    assert validate(contacts.form_fields(form()), new=True) == want
    ev = topics.decode(TOPIC, payload(), now=NOW).events[0]
    assert isinstance(ev, Contact) and ev.van == VAN and ev.time == T0
    assert {k: getattr(ev, k) for k in want} == want


@pytest.mark.parametrize(
    ("over", "field", "german"),
    [
        ({"referrals": ["jobcenter", "inkasso"]}, "referrals", "„inkasso“ ist nicht in der Liste"),
        ({"referrals": ["jba", "jba"]}, "referrals", "doppelt"),
        ({"duration": "90"}, "duration", "Dauer: bitte auswählen"),
        ({"duration": None}, "duration", "Dauer"),
        ({"persons": 0}, "persons", "1 bis 50"),
        ({"persons": PERSONS_MAX + 1}, "persons", "1 bis 50"),
        ({"persons": True}, "persons", "1 bis 50"),
        ({"persons": 2.0}, "persons", "1 bis 50"),
        ({"topics": []}, "topics", "mindestens eins"),
        ({"topics": ["job", "astrology"]}, "topics", "nicht in der Liste"),
        ({"topics": "job"}, "topics", "ungültige Auswahl"),
        ({"kind": "party"}, "kind", "Art"),
        ({"age_group": "30-40"}, "age_group", "Alter"),
        ({"municipality": "Braunschweig"}, "municipality", "Wohnort"),
        ({"first_contact": "ja"}, "first_contact", "Erstkontakt"),
        ({"first_contact": None}, "first_contact", "Erstkontakt"),
        ({"outcome": "super"}, "outcome", "Ergebnis"),
    ],
)
def test_each_bad_field_is_named_in_english_and_german(over, field, german):
    with pytest.raises(ContactError) as e:
        validate({**GOOD, **over})
    assert e.value.field == field and german in e.value.german
    assert f"'{field}'" in str(e.value)
    with pytest.raises(PayloadError, match=field):  # the hub refuses it the same way
        topics.decode(TOPIC, payload(**over), now=NOW)


@pytest.mark.parametrize(("persons", "ok"), [(1, True), (PERSONS_MAX, True), (0, False),
                                             (PERSONS_MAX + 1, False), (-1, False)])  # fmt: skip
def test_persons_bounds(persons, ok):
    if ok:
        assert validate({**GOOD, "persons": persons})["persons"] == persons
    else:
        with pytest.raises(ContactError, match="persons"):
            validate({**GOOD, "persons": persons})


def test_outside_and_every_configured_municipality_are_places():
    for m in (*default_config().reports["municipalities"], "outside"):
        assert validate({**GOOD, "municipality": m})["municipality"] == m


def test_no_referral_is_fine_and_persons_default_to_one():
    d = {k: v for k, v in GOOD.items() if k not in ("referrals", "persons")}
    got = validate(d)
    assert got["referrals"] == () and got["persons"] == 1


def test_a_retired_partner_is_refused_for_a_new_contact_but_taken_from_the_wire(retired_schule):
    assert "schule" not in retired_schule.active_partners and "tafel" in retired_schule.partners
    with pytest.raises(ContactError, match="referrals"):
        validate({**GOOD, "referrals": ["schule"]}, new=True)
    assert validate({**GOOD, "referrals": ["tafel"]}, new=True)["referrals"] == ("tafel",)
    ev = topics.decode(TOPIC, payload(referrals=["schule"]), now=NOW).events[0]
    assert ev.referrals == ("schule",)  # recorded while it was still active


def test_form_fields_types():
    got = contacts.form_fields(form(persons=" 12 ", first_contact="0"))
    assert got["persons"] == 12 and got["first_contact"] is False
    assert contacts.form_fields(form(persons="1e3"))["persons"] == "1e3"  # refused later
    assert contacts.form_fields(form(persons="99999999999"))["persons"] == "99999999999"
    assert contacts.form_fields(MultiDict())["topics"] == []


# --- the wire: decoder bounds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"tst": int(to_epoch(T0)) + 60}, "full hour"),
        ({"tst": int(NOW + 3 * 3600)}, "'tst'"),  # the future
        ({"id": "not-a-uuid"}, "'id'"),
        ({"id": ...}, "missing 'id'"),
        ({"name": "Max"}, "unknown field 'name'"),  # no free text gets in
        ({"note": "x"}, "unknown field"),
    ],
)
def test_decoder_bounds(over, message):
    with pytest.raises(PayloadError, match=message):
        topics.decode(TOPIC, payload(**over), now=NOW)


def test_payload_round_trip_and_row_round_trip(tmp_path):
    ev = Contact(T0 + timedelta(minutes=59, seconds=59), **validate(GOOD), van=VAN)
    assert ev.time == T0  # rounded down to the hour
    text = topics.dumps(contacts.payload(ev))
    assert topics.decode(TOPIC, text, now=NOW).events == (ev,)
    s = Store(tmp_path / "box.db", van=VAN, tz="Europe/Berlin")
    try:
        s.record(ev)
        row = (
            s.reader()
            .execute(
                "SELECT ts, day, hour, topics, referrals, first_contact, persons FROM contacts"
            )
            .fetchone()
        )
        want = (to_epoch(T0), "2026-06-01", 12, '["job", "money"]', '["jobcenter"]', 1, 1)
        assert tuple(row) == want
        (out,) = s.pending()
        assert (out.kind, json.loads(out.payload)["tst"]) == ("contact", int(to_epoch(T0)))
    finally:
        s.close()


def test_time_is_rounded_down_not_to_the_nearest_hour():
    for minute in (0, 1, 29, 30, 59):
        t = T0.replace(minute=minute, second=minute, microsecond=minute * 1000)
        assert Contact(t, **validate(GOOD)).time == T0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
field_values = {
    "kind": st.sampled_from(["beratung", "kurz", "x", ""]) | json_values,
    "topics": st.lists(st.sampled_from([*categories.TOPICS, "x"]), max_size=4) | json_values,
    "duration": st.sampled_from([*DURATIONS, "60"]) | json_values,
    "age_group": st.sampled_from([*categories.AGE_GROUPS, "99"]) | json_values,
    "municipality": st.sampled_from(["Peine", "outside", "Hannover"]) | json_values,
    "first_contact": st.booleans() | json_values,
    "persons": st.integers(-5, 60) | json_values,
    "referrals": st.lists(st.sampled_from(["jba", "schule", "x"]), max_size=3) | json_values,
    "outcome": st.sampled_from(["geklaert", "offen", "?"]) | json_values,
    "tst": st.sampled_from([int(to_epoch(T0)), int(to_epoch(T0)) + 1]) | json_values,
    "id": st.sampled_from(["3b1f4a5e-8c2d-4e6f-9a0b-1c2d3e4f5a6b", "x"]) | json_values,
    "extra": json_values,
}


def _assert_valid(ev_fields: dict) -> None:
    codes = contacts.current()
    assert ev_fields["kind"] in codes.kinds and ev_fields["outcome"] in codes.outcomes
    assert 1 <= len(ev_fields["topics"]) == len(set(ev_fields["topics"]))
    assert set(ev_fields["topics"]) <= set(categories.TOPICS)
    assert set(ev_fields["referrals"]) <= set(codes.partners)
    assert ev_fields["duration"] in DURATIONS and ev_fields["age_group"] in categories.AGE_GROUPS
    assert ev_fields["municipality"] in codes.places
    assert type(ev_fields["first_contact"]) is bool
    assert type(ev_fields["persons"]) is int and 1 <= ev_fields["persons"] <= PERSONS_MAX


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional=field_values))
def test_fuzzed_payloads_raise_only_payload_error(d):
    try:
        text = topics.dumps(d)
    except ValueError:  # NaN is no JSON
        return
    try:
        msg = topics.decode(TOPIC, text, now=NOW)
    except PayloadError:
        return
    (ev,) = msg.events
    _assert_valid(ev.__dict__)
    assert ev.time.minute == ev.time.second == 0 and "extra" not in d


form_values = st.text(max_size=12) | st.sampled_from(
    ["beratung", "job", "18-20", "15-30", "Ilsede", "outside", "1", "0", "50", "51", "jba",
     "geklaert", "schule"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*contacts.FIELDS, "x"]), st.lists(form_values, max_size=3), max_size=10
    )
)
def test_fuzzed_forms_raise_only_contact_error(d):
    md = MultiDict([(k, v) for k, vs in d.items() for v in vs])
    try:
        got = validate(contacts.form_fields(md), new=True)
    except ContactError as e:
        assert e.german and e.field in contacts.FIELDS
        return
    _assert_valid(got)


# --- config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"contacts": {"kinds": [{"code": "Kurz", "label": "K"}]}}, "contacts.kinds[0].code"),
        ({"contacts": {"kinds": [{"code": "a" * 33, "label": "K"}]}}, "1-32 a-z"),
        ({"contacts": {"kinds": []}}, "contacts.kinds = []: a list of 1 to"),
        ({"contacts": {"kinds": [{"code": "a", "label": "A"}, {"code": "a", "label": "B"}]}},
         "contacts.kinds[1].code = 'a': used twice"),
        ({"contacts": {"outcomes": [{"code": "ok", "label": ""}]}}, "contacts.outcomes[0].label"),
        ({"contacts": {"outcomes": [{"code": "ok", "label": "OK", "active": False}]}},
         "contacts.outcomes[0].active: unknown key"),
        ({"contacts": {"partners": [{"code": "jc", "label": "JC", "active": "no"}]}},
         "contacts.partners[0].active = 'no': must be true or false"),
        ({"contacts": {"partners": [{"code": "jc", "label": "JC", "active": False}]}},
         "keep at least one partner active"),
        ({"contacts": {"colors": []}}, "contacts.colors: unknown key"),
        ({"reports": {"town": "Hannover"}}, "reports.town = 'Hannover': must be one of"),
        ({"reports": {"municipalities": ["Peine", "Peine"]}}, "appears twice"),
        ({"reports": {"municipalities": ["Peine", "outside"]}}, "reserved"),
        ({"reports": {"municipalities": []}}, "reports.municipalities = []"),
        ({"reports": {"crew": 11}}, "reports.crew = 11"),
        ({"reports": {"crew": -1}}, "reports.crew = -1"),
        ({"reports": {"crew": True}}, "reports.crew = True"),
        ({"reports": {"funders": [{"name": "Jugendamt"}]}}, "reports.funders[0]"),
        ({"reports": {"funders": [{"name": "J", "eur": -1}]}}, "reports.funders[0].eur = -1"),
        ({"reports": {"funders": [{"name": "J", "eur": float("nan")}]}}, "eur = nan"),
        ({"reports": {"funders": [{"name": "J", "eur": 1}, {"name": "J", "eur": 2}]}},
         "named twice"),
        ({"reports": {"annual_budget_eur": 100.0, "funders": [{"name": "J", "eur": 99.0}]}},
         "differs from the sum of reports.funders (99.00)"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as e:
        default_config(overrides)
    assert message in str(e.value)


def test_config_defaults_and_funders_budget():
    cfg = default_config()
    assert [k["code"] for k in cfg.contacts["kinds"]] == [
        "kurz", "beratung", "begleitung", "hausbesuch", "gruppe", "online", "telefon"
    ]  # fmt: skip
    assert all(p["active"] for p in cfg.contacts["partners"])
    assert cfg.reports["town"] == "Peine" and len(cfg.reports["municipalities"]) == 7
    assert cfg.reports["crew"] == 2 and cfg.reports["funders"] == []
    funders = [{"name": "Jugendamt", "eur": 21493.17}, {"name": "Soziales", "eur": 10000}]
    cfg = default_config({"reports": {"funders": funders}})
    assert cfg.reports["annual_budget_eur"] == pytest.approx(31493.17)
    same = default_config({"reports": {"funders": funders, "annual_budget_eur": 31493.17}})
    assert same.reports["annual_budget_eur"] == pytest.approx(31493.17)
    codes = contacts.codes_of(default_config({"reports": {"municipalities": ["A", "B"],
                                                          "town": "A"}}))  # fmt: skip
    assert codes.places == ("A", "B", "outside")


# --- the kind: tally and retention --------------------------------------------------------


def test_registered_once_with_its_topic_and_tally():
    assert kinds.named("contact") is contacts.CONTACT
    assert kinds.for_topic("contact") is contacts.CONTACT
    assert kinds.for_tally("contact") == (contacts.CONTACT, contacts.BOX_MADE)
    assert topics.topic("vanbox", VAN, "contact") == TOPIC


def test_tally_counts_a_box_s_contacts_not_those_the_hub_recorded(tmp_path):
    hub = Store(tmp_path / "hub.db")
    try:
        mk = lambda **kw: Contact(T0, **validate(GOOD), van=VAN, **kw)  # noqa: E731
        hub.ingest_many([mk(), mk(), mk(id=new_hub_contact_id())])
        counts = day_counts(hub.reader(), VAN, "2026-06-01", to_epoch(T0) - 86400)
        assert counts["2026-06-01"]["contact"] == 2
        assert hub.count("contacts") == 3
    finally:
        hub.close()


def test_hub_contact_ids_are_version_8_and_box_ids_version_4():
    for _ in range(50):
        assert new_hub_contact_id()[14] == "8"
        assert Contact(T0, **validate(GOOD)).id[14] == "4"


def test_retention_keeps_contacts(tmp_path):
    s = Store(tmp_path / "box.db", van=VAN)
    try:
        old = T0 - timedelta(days=500)
        s.record(Contact(old, **validate(GOOD)))
        s.record(CheckIn(old, "18-20"))
        s.mark_sent([r.seq for r in s.pending()])
        res = prune(s, 400, T0, keep_unconfirmed=False)
        assert res.checkins == 1 and s.count("checkins") == 0  # the day was pruned
        assert s.count("contacts") == 1
    finally:
        s.close()
