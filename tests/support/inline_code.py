"""What a strict Content-Security-Policy would block in a page or a template: inline
scripts, inline styles, `on*` event-handler attributes and `javascript:` URLs."""

from __future__ import annotations

from html.parser import HTMLParser

# Directives every HTML page's policy must hold, with exactly these sources (see
# CSP_POLICY in common/settings.py): nothing inline, nothing from elsewhere.
STRICT_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy_problems(policy: str | None) -> list[str]:
    """Why `policy` (a Content-Security-Policy header value) is not strict enough."""
    if not policy:
        return ["no Content-Security-Policy"]
    directives = {
        words[0]: words[1:]
        for words in (part.split() for part in policy.split(";"))
        if words
    }
    return [
        f"{name} {' '.join(directives.get(name, ['missing']))}"
        for name, sources in STRICT_DIRECTIVES.items()
        if directives.get(name) != sources
    ]


class _InlineCodeFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        where = f"line {self.getpos()[0]} <{tag}>"
        names = {name for name, _ in attrs}
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{where}: event handler {name}=")
            elif name == "style":
                self.found.append(f"{where}: style= attribute")
            elif (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{where}: javascript: URL in {name}=")
        if tag == "style":
            self.found.append(f"{where}: <style> element")
        # A JSON data block (Django's json_script) is data, never run.
        data_block = "json" in (dict(attrs).get("type") or "")
        if tag == "script" and "src" not in names and not data_block:
            self._in = where

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.found.append(f"{self._in}: inline script {data.strip()[:40]!r}")


def inline_code(html: str) -> list[str]:
    """Every piece of inline code in `html`, each with its line; [] when none."""
    finder = _InlineCodeFinder()
    finder.feed(html)
    finder.close()
    return finder.found
