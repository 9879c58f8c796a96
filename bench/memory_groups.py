"""The memory of the demo stack, process by process, grouped by Procfile process.

The launcher's descendants are grouped by the Procfile process whose command they
(or an ancestor) run; the embedded PostgreSQL and Redis, which daemonize, are found
by their data directory and their port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psutil

from common.harness.procfile import procfile_argv, procfile_commands

MIB = 1024 * 1024
LAUNCHER_GROUP = "launcher (devstack + honcho)"
POSTGRES_GROUP = "postgres (embedded)"
REDIS_GROUP = "redis (embedded)"


@dataclass
class ProcessMemory:
    pid: int
    name: str
    cmdline: str
    rss: int
    pss: int | None
    uss: int | None


@dataclass
class Group:
    name: str
    processes: list[ProcessMemory] = field(default_factory=list)

    def total(self, kind: str) -> int | None:
        values = [getattr(p, kind) for p in self.processes]
        if any(v is None for v in values):
            return None
        return sum(values)


def procfile_targets() -> dict[str, str]:
    """Procfile process name → the word that identifies it (`shop.wsgi`)."""
    targets: dict[str, str] = {}
    for name in procfile_commands():
        # Expanded with no SALE_PATH_CPUS: no CPU prefix, only the command.
        words = procfile_argv(name, {})
        if words[:2] == ["nice", "-n"]:
            words = words[3:]  # the queue's consumers run niced (see the Procfile)
        targets[name] = next(w for w in words[1:] if not w.startswith("-"))
    return targets


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The embedded server: pgserver starts it detached, so it is nobody's child."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        return psutil.Process(pid)
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None


def redis_server(port: int) -> psutil.Process | None:
    """The embedded redis-server (it daemonizes): found by the port it listens on."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if not (proc.info["name"] or "").startswith("redis-server"):
                continue
            # redis-server sets its title to `redis-server 127.0.0.1:<port>`.
            if any(f":{port}" in arg for arg in proc.info["cmdline"] or []):
                return proc
            listening = proc.net_connections(kind="tcp")
            if any(c.laddr and c.laddr.port == port for c in listening):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def with_children(proc: psutil.Process | None) -> list[psutil.Process]:
    if proc is None:
        return []
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def measure(proc: psutil.Process) -> ProcessMemory | None:
    try:
        with proc.oneshot():
            name = proc.name()
            cmdline = " ".join(proc.cmdline())[:160]
            try:
                mem = proc.memory_full_info()
                return ProcessMemory(proc.pid, name, cmdline, mem.rss, mem.pss, mem.uss)
            except psutil.AccessDenied:
                rss = proc.memory_info().rss
                return ProcessMemory(proc.pid, name, cmdline, rss, None, None)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def group_of(proc: psutil.Process, launcher_pid: int, targets: dict[str, str]) -> str:
    """The Procfile process a descendant belongs to, by its or an ancestor's cmdline."""
    current: psutil.Process | None = proc
    while current is not None and current.pid != launcher_pid:
        try:
            words = {w for arg in current.cmdline() for w in arg.split()}
            if current.name().startswith("redis-server"):
                return REDIS_GROUP
            for name, target in targets.items():
                if target in words:
                    return name
            current = current.parent()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            break
    return LAUNCHER_GROUP


def collect(launcher_pid: int, pgdata: Path, redis_port: int) -> list[Group]:
    targets = procfile_targets()
    groups: dict[str, Group] = {
        name: Group(name)
        for name in [LAUNCHER_GROUP, *targets, POSTGRES_GROUP, REDIS_GROUP]
    }
    seen: set[int] = set()

    def add(group: str, procs: list[psutil.Process]) -> None:
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            memory = measure(proc)
            if memory is not None:
                groups[group].processes.append(memory)

    add(POSTGRES_GROUP, with_children(postmaster(pgdata)))
    add(REDIS_GROUP, with_children(redis_server(redis_port)))
    for proc in with_children(psutil.Process(launcher_pid)):
        add(group_of(proc, launcher_pid, targets), [proc])
    return [g for g in groups.values() if g.processes]


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.1f}"


def table_row(group: Group) -> str:
    sizes = " ".join(f"{mib(group.total(kind)):>9}" for kind in ("rss", "pss", "uss"))
    return f"{group.name:<30} {len(group.processes):>5} {sizes}"


def print_table(groups: list[Group], everything: Group) -> None:
    header = f"{'group':<30} {'procs':>5} {'RSS MiB':>9} {'PSS MiB':>9} {'USS MiB':>9}"
    rule = "-" * len(header)
    print(
        "\n".join([header, rule, *map(table_row, groups), rule, table_row(everything)])
    )


def _pss_or_rss(groups: list[Group]) -> int:
    pss = [g.total("pss") for g in groups]
    if all(value is not None for value in pss):
        return sum(value or 0 for value in pss)
    return sum(g.total("rss") or 0 for g in groups)
