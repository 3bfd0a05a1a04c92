"""Accessibility checks in the browser: axe-core through ``axe-playwright-python``.

Shared by the participant pages' browser tests. ``serious_violations(page)`` runs axe-core on
the page as it is and returns one line per serious or critical violation (rule, impact, how
many elements, the first element); an empty list is a pass.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

#: Impacts a page must not have (axe-core's scale: minor, moderate, serious, critical).
BLOCKING = frozenset({"serious", "critical"})

_AXE = Axe()


def violations(page: Any) -> list[dict[str, Any]]:
    """Every axe-core violation on ``page`` (WCAG 2 A/AA rules and best practices)."""
    results = _AXE.run(page)
    return list(results.response["violations"])


def serious_violations(page: Any) -> list[str]:
    """One readable line per serious or critical violation on ``page``."""
    out = []
    for v in violations(page):
        if v.get("impact") in BLOCKING:
            first = v["nodes"][0]["target"] if v.get("nodes") else []
            out.append(
                f"{v['id']} ({v['impact']}): {len(v.get('nodes', []))} element(s), e.g. {first}"
            )
    return out
