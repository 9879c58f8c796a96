"""Reading spans back: the local span store's files, or Jaeger's query API.

`FileSpanStore` reads the OTLP/JSON lines that common/otlp_files.py writes under
TRACES_DIR; `JaegerSpanStore` asks Jaeger's HTTP API (`/api/traces`) when
JAEGER_QUERY_URL is set (docker compose). Both give model.Span objects.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx

from observability.model import Trace
from observability.spans import KIND_NAMES, STATUS_NAMES, Span


class TraceNotFound(LookupError):
    pass


class StoreUnavailable(RuntimeError):
    pass


class SpanStore(Protocol):
    def describe(self) -> str: ...

    def trace(self, trace_id: str) -> Trace: ...

    def traces(self, *, since_ns: int, until_ns: int | None = None) -> list[Trace]: ...


# --- OTLP/JSON ----------------------------------------------------------------------


def _any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", []))
    return value.get("bytesValue")


def _attributes(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items}


def _hex_id(value: str | None, length: int) -> str:
    """Ids are hex in OTLP/JSON; protobuf's own JSON mapping would give base64."""
    if not value:
        return ""
    if len(value) == length and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return value


def spans_from_otlp(document: dict[str, Any]) -> Iterator[Span]:
    """The spans of one ExportTraceServiceRequest in OTLP/JSON."""
    for resource_spans in document.get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for raw in scope_spans.get("spans", []):
                yield Span(
                    trace_id=_hex_id(raw.get("traceId"), 32),
                    span_id=_hex_id(raw.get("spanId"), 16),
                    parent_id=_hex_id(raw.get("parentSpanId"), 16),
                    name=raw.get("name", ""),
                    kind=KIND_NAMES.get(int(raw.get("kind", 0)), "unspecified"),
                    service=service,
                    start_ns=int(raw.get("startTimeUnixNano", 0)),
                    end_ns=int(raw.get("endTimeUnixNano", 0)),
                    attributes=_attributes(raw.get("attributes", [])),
                    resource=resource,
                    status=STATUS_NAMES.get(
                        int(raw.get("status", {}).get("code", 0)), "unset"
                    ),
                    links=tuple(
                        (
                            _hex_id(link.get("traceId"), 32),
                            _hex_id(link.get("spanId"), 16),
                        )
                        for link in raw.get("links", [])
                    ),
                    scope=scope,
                    trace_state=raw.get("traceState", ""),
                )


def _group(spans: Iterable[Span]) -> dict[str, list[Span]]:
    grouped: dict[str, list[Span]] = {}
    for span in spans:
        grouped.setdefault(span.trace_id, []).append(span)
    return grouped


def _with_linked_ids(
    wanted: frozenset[str], grouped: dict[str, list[Span]]
) -> frozenset[str]:
    """`wanted` and every trace id in `grouped` that links into it (transitively)."""
    found = set(wanted)
    changed = True
    while changed:
        changed = False
        for other, spans in grouped.items():
            if other not in found and any(
                link[0] in found for span in spans for link in span.links
            ):
                found.add(other)
                changed = True
    return frozenset(found)


class FileSpanStore:
    """OTLP/JSON lines files, one per process, under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"the span store in {self.directory}"

    def spans(
        self, *, since_ns: int = 0, mentioning: frozenset[str] = frozenset()
    ) -> Iterator[Span]:
        """Every stored span; with `mentioning`, only batches naming one of the ids."""
        if not self.directory.is_dir():
            return
        needles = [tid.encode() for tid in mentioning]
        for path in sorted(self.directory.glob("*.jsonl")):
            if since_ns and path.stat().st_mtime_ns < since_ns:
                continue  # nothing written since then
            yield from self.spans_in(path, needles)

    @staticmethod
    def spans_in(path: Path, needles: Iterable[bytes] = ()) -> Iterator[Span]:
        """The spans of one process's file (of the lines naming a needle, if any)."""
        needles = list(needles)
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # the writer is still writing this line
                if needles and not any(needle in line for needle in needles):
                    continue  # cheaper than parsing every batch of a long sale
                try:
                    document = json.loads(line)
                except ValueError:
                    continue
                yield from spans_from_otlp(document)

    def trace(self, trace_id: str) -> Trace:
        """The trace's spans, and those of traces linking into it (transitively)."""
        wanted = frozenset({trace_id.lower()})
        while True:
            grouped = _group(self.spans(mentioning=wanted))
            linked = _with_linked_ids(wanted, grouped)
            if linked == wanted:
                break
            wanted = linked
        spans = [span for tid in wanted for span in grouped.get(tid, [])]
        if not spans or trace_id.lower() not in grouped:
            raise TraceNotFound(f"no span of trace {trace_id} in {self.describe()}")
        return Trace(trace_id.lower(), spans)

    def traces(self, *, since_ns: int, until_ns: int | None = None) -> list[Trace]:
        grouped = _group(self.spans(since_ns=since_ns))
        found = []
        for trace_id, spans in grouped.items():
            trace = Trace(trace_id, spans)
            if trace.start_ns >= since_ns and (
                until_ns is None or trace.start_ns <= until_ns
            ):
                found.append(trace)
        return sorted(found, key=lambda t: t.start_ns)


# --- Jaeger ------------------------------------------------------------------------


def spans_from_jaeger(data: dict[str, Any]) -> Iterator[Span]:
    """The spans of one trace of Jaeger's `/api/traces` JSON."""
    processes = data.get("processes", {})
    for raw in data.get("spans", []):
        process = processes.get(raw.get("processID"), {})
        resource = {tag["key"]: tag.get("value") for tag in process.get("tags", [])}
        resource["service.name"] = process.get("serviceName", "unknown")
        tags = {tag["key"]: tag.get("value") for tag in raw.get("tags", [])}
        trace_id = raw["traceID"].zfill(32)
        parent_id = ""
        links = []
        for ref in raw.get("references", []):
            ref_trace, ref_span = ref["traceID"].zfill(32), ref["spanID"].zfill(16)
            if (
                ref.get("refType") == "CHILD_OF"
                and ref_trace == trace_id
                and not parent_id
            ):
                parent_id = ref_span
            else:
                links.append((ref_trace, ref_span))
        start_ns = int(raw["startTime"]) * 1000
        status = str(tags.pop("otel.status_code", "unset")).lower()
        yield Span(
            trace_id=trace_id,
            span_id=raw["spanID"].zfill(16),
            parent_id=parent_id,
            name=raw.get("operationName", ""),
            kind=str(tags.pop("span.kind", "internal")),
            service=str(resource["service.name"]),
            start_ns=start_ns,
            end_ns=start_ns + int(raw.get("duration", 0)) * 1000,
            attributes=tags,
            resource=resource,
            status="error" if tags.get("error") is True else status,
            links=tuple(links),
            scope=str(tags.get("otel.scope.name", "")),
        )


class JaegerSpanStore:
    """Jaeger's query service (the all-in-one image's UI port, 16686)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def describe(self) -> str:
        return f"Jaeger at {self.base_url}"

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = httpx.get(
                self.base_url + path, params=params, timeout=self.timeout
            )
        except httpx.HTTPError as error:
            raise StoreUnavailable(
                f"{self.describe()} does not answer: {error}"
            ) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StoreUnavailable(
                f"{self.describe()} answered {response.status_code} for {path}"
            )
        return response.json()

    def trace(self, trace_id: str) -> Trace:
        body = self._get(f"/api/traces/{trace_id.lower()}")
        data = (body or {}).get("data") or []
        if not data:
            raise TraceNotFound(f"no trace {trace_id} in {self.describe()}")
        spans = [span for item in data for span in spans_from_jaeger(item)]
        return Trace(trace_id.lower(), spans)

    def traces(self, *, since_ns: int, until_ns: int | None = None) -> list[Trace]:
        services = (self._get("/api/services") or {}).get("data") or []
        end_us = (until_ns or time.time_ns()) // 1000
        grouped: dict[str, list[Span]] = {}
        for service in services:
            params = {
                "service": service,
                "start": since_ns // 1000,
                "end": end_us,
                "limit": 1000,
            }
            for item in (self._get("/api/traces", params) or {}).get("data") or []:
                for span in spans_from_jaeger(item):
                    grouped.setdefault(span.trace_id, []).append(span)
        return sorted(
            (Trace(tid, spans) for tid, spans in grouped.items()),
            key=lambda t: t.start_ns,
        )


def span_store(*, traces_dir: str | Path, jaeger_query_url: str = "") -> SpanStore:
    if jaeger_query_url:
        return JaegerSpanStore(jaeger_query_url)
    return FileSpanStore(Path(traces_dir))


def trace_wait(
    store: SpanStore,
    trace_id: str,
    *,
    complete: Callable[[Trace], bool],
    timeout: float = 30.0,
    poll: float = 0.25,
    settle: float = 1.0,
) -> Trace:
    """The trace once `complete` holds and no new span came for `settle` seconds.

    Spans are exported in batches, per process, a moment after they end (500 ms for
    the local store): a trace is read back when its processes have flushed, not when
    the purchase answered, and a late batch (a worker's last write) is waited for.
    """
    deadline = time.monotonic() + timeout
    last_count, changed_at = -1, time.monotonic()
    last: Trace | None = None
    while True:
        try:
            trace: Trace | None = store.trace(trace_id)
        except TraceNotFound:
            trace = None
        now = time.monotonic()
        if trace is not None:
            if len(trace.spans) != last_count:
                last_count, changed_at, last = len(trace.spans), now, trace
            elif complete(trace) and now - changed_at >= settle:
                return trace
        if now > deadline:
            got = (
                f"{len(last.spans)} spans from {', '.join(last.services)}"
                if last
                else "no span at all"
            )
            raise TraceNotFound(
                f"trace {trace_id} did not arrive complete in {store.describe()} "
                f"within {timeout:.0f}s ({got}). Is the stack running with tracing "
                "on (OTEL_SDK_DISABLED unset) and writing where this command reads "
                "(TRACES_DIR / JAEGER_QUERY_URL)?"
            )
        time.sleep(poll)
