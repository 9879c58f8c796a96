"""No template of ours holds code the Content-Security-Policy would block.

Every HTML page's policy allows the pages' own script and style files only
(docs/guides/security.md): an inline <script>, an `on*=` attribute, a `style=`
attribute or a <style> element in a template would silently stop working.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.inline_code import inline_code, policy_problems

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("common", "shop", "orders_api", "warehouse")
TEMPLATES = sorted(
    path
    for service in SERVICES
    for path in (ROOT / service).glob("templates/**/*.html")
)


def test_every_service_s_templates_are_found() -> None:
    assert len(TEMPLATES) > 20
    assert {p.relative_to(ROOT).parts[0] for p in TEMPLATES} >= {"shop", "orders_api"}


@pytest.mark.parametrize(
    "template", TEMPLATES, ids=[str(p.relative_to(ROOT)) for p in TEMPLATES]
)
def test_a_template_holds_no_inline_script_style_or_handler(template: Path) -> None:
    assert inline_code(template.read_text()) == []


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ('<script src="/static/a.js" defer></script>', []),
        ('<script id="d" type="application/json">{"a": 1}</script>', []),
        ("<script>alert(1)</script>", ["inline script"]),
        ('<button onclick="go()">Go</button>', ["event handler onclick="]),
        ('<p style="color: red">x</p>', ["style= attribute"]),
        ("<style>p { color: red }</style>", ["<style> element"]),
        ('<a href="javascript:go()">x</a>', ["javascript: URL"]),
    ],
)
def test_the_inline_code_finder_sees_what_a_policy_blocks(
    html: str, found: list[str]
) -> None:
    problems = inline_code(html)

    assert len(problems) == len(found)
    for problem, expected in zip(problems, found, strict=True):
        assert expected in problem


def test_the_strict_policy_check_refuses_unsafe_inline_and_missing_policies() -> None:
    from django.conf import settings

    assert policy_problems(settings.CSP_POLICY) == []
    assert policy_problems(None) == ["no Content-Security-Policy"]
    relaxed = settings.CSP_POLICY.replace(
        "script-src 'self'", "script-src 'self' 'unsafe-inline'"
    )
    assert policy_problems(relaxed) == ["script-src 'self' 'unsafe-inline'"]
    assert policy_problems("script-src 'self'") == [
        "default-src missing",
        "style-src missing",
        "object-src missing",
        "base-uri missing",
        "frame-ancestors missing",
    ]
