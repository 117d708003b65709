"""Accessibility and layout checks shared by the browser tests: an axe-core scan (the engine
axe-playwright-python ships) and the page's horizontal overflow.

`scan(page)` returns the serious and critical violations as readable lines;
`assert_accessible(page)` fails with them listed. Use it on any page of the admin.
"""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

# axe-core's impact levels that fail a test. "minor" and "moderate" findings (a landmark
# that could be named better, say) are reported by axe but do not block.
BLOCKING = ("serious", "critical")

_axe = Axe()


def scan(page, *, exclude: list[str] | None = None) -> list[str]:
    """The page's serious and critical axe-core violations, one line per element."""
    context = {"exclude": [[selector] for selector in exclude]} if exclude else None
    results = _axe.run(page, context=context, options={"resultTypes": ["violations"]})
    return [
        f"{violation['id']} ({violation['impact']}): {', '.join(node['target'])} — {node['failureSummary'].splitlines()[-1].strip()}"
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING
        for node in violation["nodes"]
    ]


def assert_accessible(page, where: str = "") -> None:
    violations = scan(page)
    assert not violations, f"axe-core on {where or page.url}:\n" + "\n".join(violations)


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than the viewport (0: no sideways scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


_WIDEST = """() => {
  const edge = document.documentElement.clientWidth;
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + [...e.classList].map(c => '.' + c).join('');
  return [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > edge + 1 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > edge + 1))
    .slice(0, 10).map(e => name(e.parentElement) + ' > ' + name(e) + ' (' + Math.round(e.getBoundingClientRect().right) + ' px)');
}"""


def assert_fits(page, where: str = "") -> None:
    """No sideways scroll; otherwise name the elements that stick out first."""
    overflow = horizontal_overflow(page)
    assert overflow == 0, f"{where or page.url} is {overflow} px too wide: " + "; ".join(page.evaluate(_WIDEST))
