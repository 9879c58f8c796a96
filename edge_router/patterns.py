"""Route table path patterns, CloudFront-style: their check and how they match.

`*` is any run of characters (slashes included), `?` one character; matching is on
the match key (the normalised path, lower case, ending with "/": edge_router/paths.py).
"""

from __future__ import annotations

import re
from typing import Any

PATTERN_CHARS = re.compile(r"^/[A-Za-z0-9/_.~*?-]*$")


def pattern_parse(spec: dict[str, Any], where: str, problems: list[str]) -> str | None:
    pattern = spec.get("path")
    if not isinstance(pattern, str) or not PATTERN_CHARS.match(pattern):
        problems.append(
            f"{where}: path must start with / and hold only letters, digits, "
            f"/ _ . ~ - and the wildcards * ?; got {pattern!r}"
        )
        return None
    if "/../" in pattern + "/" or "/./" in pattern + "/" or "//" in pattern:
        problems.append(f"{where}: path {pattern!r} is not normalised")
        return None
    return pattern


def wildcard_regex(text: str) -> str:
    """A regex body for a pattern's text: `*` any run, `?` one character, the rest
    literal (not anchored)."""
    parts = []
    for char in text:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def compile_pattern(pattern: str) -> tuple[str, bool, re.Pattern[str] | None]:
    """(prefix, exact, regex) for a CloudFront-style pattern, in match-key terms.

    Match keys are lower case and end with "/", so literal parts of a pattern get a
    trailing slash too: `/a/b/*` matches `/a/b`, `/a/b/` and `/a/b/c`.
    """
    lowered = pattern.lower()
    if "?" not in lowered and "*" not in lowered:
        return (lowered if lowered.endswith("/") else lowered + "/"), True, None
    if "?" not in lowered and lowered.count("*") == 1 and lowered.endswith("*"):
        return lowered[:-1], False, None
    body = wildcard_regex(lowered)
    if not lowered.endswith(("/", "*")):
        body += "/"
    return "", False, re.compile(body + r"\Z", re.DOTALL)
