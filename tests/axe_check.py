"""axe-core in the tests' browser pages (Playwright injects it; no network)."""

from __future__ import annotations

# Leaflet's own widgets (zoom buttons, attribution) are not ours to fix; our page is.
LEAFLET = ".leaflet-control-container"


def serious_violations(page, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """axe-core's serious and critical findings on ``page``, one line each (rule, what is
    wrong, the first three elements), leaving out the elements matching ``exclude``."""
    from axe_playwright_python.sync_playwright import Axe

    context = {"exclude": [[sel] for sel in exclude]} if exclude else None
    result = Axe().run(page, context=context) if context else Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
