"""The tables of the annual report (:mod:`telemetry.annual`), in German, with the people
counts that may be hidden and the relations between them (for
:func:`telemetry.annual_privacy.hide_small`). They are collected with
:class:`telemetry.annual_builder._Builder`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from .annual import (
    AGE_ORDER,
    DASH,
    FIGURES,
    MONTHS,
    NOT_AT_STOP,
    OUTSIDE,
    OUTSIDE_LABEL,
    TOTAL,
    UNPLANNED,
    _i,
    _pct,
    _Year,
)
from .annual_builder import _Builder
from .annual_privacy import Cell, Derived, Relation
from .reports import Table


def build(
    *,
    cur: _Year,
    prev: _Year,
    con: dict,
    days,
    hours,
    planned,
    served,
    per_stop,
    town: str,
    municipalities: list[str],
    labels: dict[str, str],
    kinds,
    partners,
    budget: float,
    budget_to_date: float,
    funders,
    year: int,
    future_from: int,
) -> tuple[tuple[Table, ...], list[Relation | Derived], dict[Cell, int], dict[str, Any]]:
    b = _Builder()
    lab = labels.get

    # places: visitors and check-ins by stop and municipality
    stop_vis: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for src, col in ((cur.besuche, 0), (cur.checkins, 1)):
        for k, n in src.items():
            if not k or k not in cur.info:
                continue
            name, muni, is_planned = cur.info[k]
            stop_vis[(name if is_planned else UNPLANNED, muni)][col] += n
    n_visits: dict[tuple[str, str], int] = defaultdict(int)  # stop visits per row
    halts: dict[str, int] = defaultdict(int)
    for v in cur.visits:
        halts[v[4]] += 1
        n_visits[(v[3] if v[5] else UNPLANNED, v[4])] += 1
    for key in list(n_visits) + list(per_stop):
        stop_vis[key]  # noqa: B018 - a row even without visitors
    munis = list(municipalities) + sorted({m for _, m in stop_vis} - set(municipalities) - {""})
    order = {m: i for i, m in enumerate(munis)}
    stop_keys = sorted(stop_vis, key=lambda k: (order.get(k[1], 99), k[0] == UNPLANNED, k[0]))
    srows = []
    for key in stop_keys:
        p, s = per_stop.get(key, (0, 0))
        if key[0] == UNPLANNED:
            p = s = DASH
        vis, chk = stop_vis[key]
        srows.append([*key, p, s, n_visits.get(key, 0), _i(vis), _i(chk)])
    b.add(
        "haltestellen",
        "Haltestellen",
        (
            "Haltestelle",
            "Gemeinde",
            "Halte geplant",
            "davon bedient",
            "Halte",
            "Besuche",
            "Check-ins",
        ),
        srows,
        people=(5, 6),
        total=True,
        note="Halte geplant: laut Tourplan; Halte: alle Halte dort. Ungeplante Halte"
        " (z. B. Hausbesuche) nur je Gemeinde, ohne Ort.",
    )

    not_at_stop = _i(cur.checkins.get("", 0)) + _i(
        sum(n for k, n in cur.checkins.items() if k and k not in cur.info)
    )
    kon_muni = con["muni"]
    grows = []
    for m in munis:
        vis = sum(_i(v[0]) for (_, mm), v in stop_vis.items() if mm == m)
        chk = sum(_i(v[1]) for (_, mm), v in stop_vis.items() if mm == m)
        grows.append([m, halts.get(m, 0), vis, chk, int(kon_muni.get(m, 0))])
    for m in sorted(set(kon_muni) - set(munis) - {OUTSIDE}):  # an old or retired name
        grows.append([m, 0, 0, 0, int(kon_muni[m])])
    if kon_muni.get(OUTSIDE):
        grows.append([OUTSIDE_LABEL, DASH, DASH, DASH, int(kon_muni[OUTSIDE])])
    if not_at_stop:
        grows.append([NOT_AT_STOP, DASH, DASH, not_at_stop, DASH])
    b.add(
        "gemeinden",
        "Gemeinden",
        ("Gemeinde", "Halte", "Besuche", "Check-ins", "Beratungskontakte (Wohnort)"),
        grows,
        people=(2, 3, 4),
        total=True,
        chart="bar",
        note="Besuche und Check-ins nach der Gemeinde des Halts, Beratungskontakte nach"
        " dem Wohnort.",
    )
    for gi, m in enumerate(munis):
        for c_g, c_s in ((2, 5), (3, 6)):
            b.rel(
                ("gemeinden", gi, c_g),
                [("haltestellen", si, c_s) for si, k in enumerate(stop_keys) if k[1] == m],
            )
    g_last = len(grows)
    if not_at_stop:  # the municipalities' check-ins = the stops' check-ins + not at a stop
        b.rel(
            ("gemeinden", g_last, 3),
            [("haltestellen", len(srows), 6), ("gemeinden", g_last - 1, 3)],
        )
    else:
        b.rel(("gemeinden", g_last, 3), [("haltestellen", len(srows), 6)])
    b.rel(("gemeinden", g_last, 2), [("haltestellen", len(srows), 5)])

    # months, with the year before
    mrows = []
    for m in range(12):
        fut = m + 1 > future_from
        mrows.append(
            [
                MONTHS[m],
                DASH if fut else _i(cur.month_besuche[m]),
                _i(prev.month_besuche[m]),
                DASH if fut else _i(cur.month_checkins[m]),
                _i(prev.month_checkins[m]),
                DASH if fut else cur.month_kontakte[m],
                prev.month_kontakte[m],
            ]
        )
    y0, y1 = str(year), str(year - 1)
    b.add(
        "monate",
        "Monate im Vergleich zum Vorjahr",
        (
            "Monat",
            f"Besuche {y0}",
            f"Besuche {y1}",
            f"Check-ins {y0}",
            f"Check-ins {y1}",
            f"Beratungskontakte {y0}",
            f"Beratungskontakte {y1}",
        ),
        mrows,
        people=(1, 2, 3, 4, 5, 6),
        total=True,
        chart="line",
    )

    # service days and hours, planned vs served
    erows = []
    for m in range(12):
        if m + 1 > future_from:
            erows.append([MONTHS[m]] + [DASH] * 6)
            continue
        erows.append(
            [
                MONTHS[m],
                len(days.get(m, ())),
                round(hours[m], 1),
                planned[m],
                served[m],
                _pct(served[m], planned[m]),
                sum(1 for v in cur.visits if not v[5] and int(v[2][5:7]) == m + 1),
            ]
        )
    b.add(
        "einsatz",
        "Einsatztage, Einsatzstunden und Halte",
        (
            "Monat",
            "Einsatztage",
            "Einsatzstunden",
            "Halte geplant",
            "Halte bedient",
            "Anteil bedient (%)",
            "Ungeplante Halte",
        ),
        erows,
        total=True,
    )
    e_tot = list(b.tables[-1].rows[-1])
    e_tot[5] = _pct(e_tot[4], e_tot[3])
    b.tables[-1] = replace(b.tables[-1], rows=(*b.tables[-1].rows[:-1], tuple(e_tot)))

    # age groups and topics: check-ins and counselling contacts
    ages = [a for a in AGE_ORDER if cur.ages.get(a) or con["age"].get(a)] + sorted(
        (set(cur.ages) | set(con["age"])) - set(AGE_ORDER)
    )
    b.add(
        "altersgruppen",
        "Altersgruppen",
        ("Altersgruppe", "Check-ins", "Beratungskontakte"),
        [[lab(a, a), _i(cur.ages.get(a, 0)), int(con["age"].get(a, 0))] for a in ages],
        people=(1, 2),
        total=True,
        chart="bar",
    )
    topics = sorted(
        set(cur.topics) | set(con["topic"]),
        key=lambda t: (-(cur.topics.get(t, 0) + con["topic"].get(t, 0)), t),
    )
    b.add(
        "themen",
        "Themen",
        ("Thema", "Check-ins", "Beratungskontakte"),
        [[lab(t, t), _i(cur.topics.get(t, 0)), int(con["topic"].get(t, 0))] for t in topics],
        people=(1, 2),
        chart="bar",
        note="Mehrfachnennungen möglich: keine Summe.",
    )

    # counselling contacts by kind, referrals per partner
    kind_codes = [k for k, _ in kinds] + sorted(set(con["kind"]) - {k for k, _ in kinds})
    kl = dict(kinds)
    b.add(
        "kontaktarten",
        "Beratungskontakte nach Art",
        ("Kontaktart", "Beratungskontakte", "davon Erstkontakte"),
        [
            [kl.get(k, k), int(con["kind"].get(k, 0)), int(con["first"].get(k, 0))]
            for k in kind_codes
        ],
        people=(1, 2),
        total=True,
        chart="bar",
    )
    part_codes = [p for p, _ in partners] + sorted(set(con["referral"]) - {p for p, _ in partners})
    pl = dict(partners)
    b.add(
        "vermittlungen",
        "Vermittlungen je Partner",
        ("Partner", "Vermittlungen"),
        [[pl.get(p, p), int(con["referral"].get(p, 0))] for p in part_codes],
        people=(1,),
        total=True,
        chart="bar",
    )

    # rural share
    gi = {r[0]: i for i, r in enumerate(grows)}
    town_vis = grows[gi[town]][2] if town in gi else 0
    town_con = grows[gi[town]][4] if town in gi else 0
    rural_rows = [i for i, r in enumerate(grows) if r[0] not in (town, OUTSIDE_LABEL, NOT_AT_STOP)]
    rural_vis = sum(grows[i][2] for i in rural_rows)
    rural_con = sum(grows[i][4] for i in rural_rows)
    outside_con = int(kon_muni.get(OUTSIDE, 0))
    all_vis, all_con = town_vis + rural_vis, town_con + rural_con + outside_con
    lrows = [
        [f"Stadt {town}", town_vis, _pct(town_vis, all_vis), town_con, _pct(town_con, all_con)],
        [
            "Ländliche Gemeinden",
            rural_vis,
            _pct(rural_vis, all_vis),
            rural_con,
            _pct(rural_con, all_con),
        ],
        [OUTSIDE_LABEL, DASH, DASH, outside_con, _pct(outside_con, all_con)],
        [TOTAL, all_vis, 100.0 if all_vis else DASH, all_con, 100.0 if all_con else DASH],
    ]
    b.add(
        "laendlich",
        f"Stadt {town} und ländlicher Raum",
        (
            "Gebiet",
            "Besuche",
            "Anteil Besuche (%)",
            "Beratungskontakte",
            "Anteil Beratungskontakte (%)",
        ),
        lrows,
        people=(1, 3),
        chart="pie",
    )
    b.rel(("laendlich", 3, 1), [("laendlich", 0, 1), ("laendlich", 1, 1)])
    b.rel(("laendlich", 3, 3), [("laendlich", i, 3) for i in range(3)])
    if town in gi:
        b.rel(("laendlich", 0, 1), [("gemeinden", gi[town], 2)])
        b.rel(("laendlich", 0, 3), [("gemeinden", gi[town], 4)])
    b.rel(("laendlich", 1, 1), [("gemeinden", i, 2) for i in rural_rows])
    b.rel(("laendlich", 1, 3), [("gemeinden", i, 4) for i in rural_rows])
    if OUTSIDE_LABEL in gi:
        b.rel(("laendlich", 2, 3), [("gemeinden", gi[OUTSIDE_LABEL], 4)])
    for r in range(4):
        b.derived(("laendlich", r, 2), ("laendlich", r, 1), ("laendlich", 3, 1))
        b.derived(("laendlich", r, 4), ("laendlich", r, 3), ("laendlich", 3, 3))

    # the budget by funder
    frows = [[n, round(e, 2), _pct(e, budget)] for n, e in funders] or [
        ["Budget (ohne Aufteilung)", round(budget, 2), 100.0 if budget else DASH]
    ]
    b.add(
        "budget",
        "Budget nach Geldgebern",
        ("Geldgeber", "Betrag (€)", "Anteil (%)"),
        frows,
        total=bool(funders),
        chart="pie" if len(frows) > 1 else "none",
    )

    # key figures, first
    tot = {t.name: t.rows[-1] for t in b.tables if t.rows}
    kontakte = int(tot["kontaktarten"][1])
    besuche = int(tot["gemeinden"][2])
    f: dict[str, Any] = {
        "besuche": besuche,
        "checkins": int(tot["gemeinden"][3]),
        "kontakte": kontakte,
        "erstkontakte": int(tot["kontaktarten"][2]),
        "vermittlungen": int(tot["vermittlungen"][1]),
        "einsatztage": int(tot["einsatz"][1]),
        "einsatzstunden": tot["einsatz"][2],
        "halte_geplant": int(tot["einsatz"][3]),
        "halte_bedient": int(tot["einsatz"][4]),
        "quote_bedient": tot["einsatz"][5],
        "halte_ungeplant": int(tot["einsatz"][6]),
        "gemeinden": sum(1 for m in munis if halts.get(m)),
        "laendlich_besuche": lrows[1][2],
        "laendlich_kontakte": lrows[1][4],
        "budget": round(budget, 2),
        "budget_anteilig": round(budget_to_date, 2),
        "kosten_je_kontakt": round(budget_to_date / kontakte, 2)
        if budget_to_date and kontakte
        else DASH,
    }
    kz_rows = [[label, f[key], unit] for key, label, unit in FIGURES]
    b.tables.insert(
        0,
        Table(
            "kennzahlen",
            "Kennzahlen",
            ("Kennzahl", "Wert", "Einheit"),
            tuple(map(tuple, kz_rows)),
            "none",
            "",
        ),
    )
    row = {key: i for i, (key, _, _) in enumerate(FIGURES)}
    for key in ("besuche", "checkins", "kontakte", "erstkontakte", "vermittlungen"):
        b.cells[("kennzahlen", row[key], 1)] = int(f[key])
    for key, same in (
        (
            "besuche",
            [
                ("gemeinden", g_last, 2),
                ("monate", 12, 1),
                ("haltestellen", len(srows), 5),
                ("laendlich", 3, 1),
            ],
        ),
        (
            "checkins",
            [("gemeinden", g_last, 3), ("monate", 12, 3), ("altersgruppen", len(ages), 1)],
        ),
        (
            "kontakte",
            [
                ("gemeinden", g_last, 4),
                ("monate", 12, 5),
                ("altersgruppen", len(ages), 2),
                ("kontaktarten", len(kind_codes), 1),
                ("laendlich", 3, 3),
            ],
        ),
        ("erstkontakte", [("kontaktarten", len(kind_codes), 2)]),
        ("vermittlungen", [("vermittlungen", len(part_codes), 1)]),
    ):
        for other in same:
            b.rel(("kennzahlen", row[key], 1), [other])
            b.rel(other, [("kennzahlen", row[key], 1)])
    b.derived(("kennzahlen", row["laendlich_besuche"], 1), ("laendlich", 1, 2))
    b.derived(("kennzahlen", row["laendlich_kontakte"], 1), ("laendlich", 1, 4))
    b.derived(("kennzahlen", row["kosten_je_kontakt"], 1), ("kennzahlen", row["kontakte"], 1))
    return tuple(b.tables), b.relations, b.cells, f
