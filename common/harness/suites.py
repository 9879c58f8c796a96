"""The test suites behind `make test` (`python -m common.devstack test`): one pytest
run each, every service's tests under its own settings, with one closing line for
the whole run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.harness.processes import run_foreground
from common.harness.procfile import ROOT
from common.harness.supervisor import Say

# Test suites, one pytest run each: every service is tested under its own settings.
TEST_SUITES: tuple[tuple[str, str], ...] = (
    ("tests/shop", "shop.settings"),
    ("tests/warehouse", "warehouse.settings"),
    ("tests/orders_api", "orders_api.settings"),
    ("tests/fulfillment_queue", "fulfillment_queue.settings"),
    ("tests/project", "shop.settings"),
    ("tests/e2e", "shop.settings"),
    ("tests/observability", "observability.settings"),
    ("tests/edge", "edge_router.settings"),
    # The sale's load test: the runner under the `sale` command's settings.
    ("tests/loadtest", "orders_api.settings"),
    # docker-compose.yml on a real Docker engine (skipped where none can start).
    ("tests/compose", "shop.settings"),
)


def suites_run(env: dict[str, str], pytest_args: list[str], *, say: Say) -> int:
    """The suites `pytest_args` names (a suite, or a path inside one), else every
    one, in `env`; 0 if they all pass. JUnit reports go to reports/junit/."""
    explicit = [a for a in pytest_args if not a.startswith("-")]
    suites = [(p, s) for p, s in TEST_SUITES if not explicit or p in explicit]
    if explicit and not suites:
        # A path inside one suite: find the settings of the suite that holds it.
        suites = [
            (target, s)
            for target in explicit
            for p, s in TEST_SUITES
            if target.startswith(p + "/") or target.startswith(p + "::")
        ]
    options = [a for a in pytest_args if a.startswith("-")]
    failed: list[str] = []
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    results = ROOT / "reports" / "junit"
    results.mkdir(parents=True, exist_ok=True)
    for path, settings in suites:
        say(f"pytest {path}  (DJANGO_SETTINGS_MODULE={settings})")
        junit = results / (path.replace("/", "_").replace(":", "_") + ".xml")
        junit.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pytest", path, f"--ds={settings}"]
        code = run_foreground([*cmd, f"--junitxml={junit}", *options], env)
        for key, value in _junit_counts(junit).items():
            totals[key] += value
        if code != 0:
            failed.append(f"{path} (exit {code})")
    # One closing line for the whole run, whatever the number of suites.
    print(
        f"tests: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['skipped']} skipped",
        flush=True,
    )
    if failed:
        say("\033[31mfailed:\033[0m " + ", ".join(failed))
        return 1
    return 0


def _junit_counts(path: Path) -> dict[str, int]:
    """passed/failed/skipped from a pytest JUnit XML report (all zero if none)."""
    import xml.etree.ElementTree as ET

    if not path.exists():
        return {"passed": 0, "failed": 0, "skipped": 0}
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's report
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return {"passed": tests - failed - skipped, "failed": failed, "skipped": skipped}
