"""A trace's service map, as X-Ray draws one: who called whom, how often, how fast.

Nodes are the client, the services, and the databases and caches they talk to. An
edge is every call from one to another: its count and its mean latency as the caller
saw it (the client span when there is one, else the callee's span).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from observability.model import Trace
from observability.spans import Span

CLIENT = "client"


@dataclass
class Edge:
    source: str
    target: str
    latencies_ns: list[int] = field(default_factory=list)
    asynchronous: bool = False

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    @property
    def mean_ns(self) -> float:
        return sum(self.latencies_ns) / len(self.latencies_ns)


@dataclass
class ServiceMap:
    nodes: dict[str, str]  # name -> kind: client, service, database, cache, remote
    edges: list[Edge]

    def depth(self) -> dict[str, int]:
        """Each node's column: its distance from the client along the edges."""
        depths = {CLIENT: 0}
        frontier = [CLIENT]
        while frontier:
            following = []
            for node in frontier:
                for edge in self.edges:
                    if edge.source == node and edge.target not in depths:
                        depths[edge.target] = depths[node] + 1
                        following.append(edge.target)
            frontier = following
        for node in self.nodes:
            depths.setdefault(node, max(depths.values()) + 1)
        return depths


def _store_node(span: Span) -> tuple[str, str]:
    if span.db_system == "redis":
        return "Redis", "cache"
    name = span.attribute("db.namespace", "db.name")
    label = "PostgreSQL" if span.db_system == "postgresql" else span.db_system
    return (f"{label} {name}" if name else label), "database"


def _remote_name(span: Span) -> str:
    host = span.attribute("server.address", "net.peer.name")
    port = span.attribute("server.port", "net.peer.port")
    if not host:
        url = str(span.attribute("url.full", "http.url") or "")
        authority = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
        return authority or "remote"
    return f"{host}:{port}" if port else str(host)


def service_map(trace: Trace) -> ServiceMap:
    nodes: dict[str, str] = {CLIENT: "client"}
    edges: dict[tuple[str, str], Edge] = {}

    def add(source: str, target: str, latency: int, asynchronous: bool) -> None:
        edge = edges.setdefault((source, target), Edge(source, target))
        edge.latencies_ns.append(latency)
        edge.asynchronous = edge.asynchronous or asynchronous

    for span in trace.spans:
        nodes.setdefault(span.service, "service")
        parent = trace.parent_of(span)
        if parent is None:
            if span in trace.roots and span.kind == "server":
                add(CLIENT, span.service, span.duration_ns, False)
        elif parent.service != span.service:
            caller_waited = parent.kind == "client"
            latency = parent.duration_ns if caller_waited else span.duration_ns
            # Handed over (through a queue or the outbox, by a link), or run after
            # the caller had ended.
            asynchronous = trace.handed_over(span) or span.start_ns >= parent.end_ns
            add(parent.service, span.service, latency, asynchronous)
        if span.db_system:
            name, kind = _store_node(span)
            nodes.setdefault(name, kind)
            add(span.service, name, span.duration_ns, False)
        elif span.kind == "client" and not any(
            kid.service != span.service for kid in trace.children[span.span_id]
        ):
            # A call into something that sent no spans: a remote node, X-Ray style.
            name = _remote_name(span)
            nodes.setdefault(name, "remote")
            add(span.service, name, span.duration_ns, False)
    return ServiceMap(nodes, list(edges.values()))
