"""Resident memory of the whole demo stack, idle and at the peak of a sale.

    python -m bench.memory [--settle 5] [--timeout 120] [--goal-mib 1024] [--keep]
                           [--sale none|legacy|strangler|both] [--every 2]

Starts `python -m common.devstack demo` with embedded PostgreSQL and Redis in a
temporary data directory and on free ports, waits until the shop and the warehouse
answer, lets the stack settle and sums the memory of every process of it (idle).
Then runs `manage.py sale run --no-start --mode strangler` against that same stack
and samples it every `--every` seconds: the sample with the largest PSS is the
peak. Writes `reports/bench-memory-<timestamp>.json` and stops the stack again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def procfile_targets() -> dict[str, str]:
    """Procfile process name → the word that identifies it (`shop.wsgi`)."""
    targets: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        # The new path's bulkhead prefix (`${SALE_PATH_CPUS:+taskset -c ...}`).
        command = re.sub(r"^\s*\$\{SALE_PATH_CPUS:\+[^}]*\}", "", command)
        words = shlex.split(command)
        if words[:2] == ["nice", "-n"]:
            words = words[3:]  # the queue's consumers run niced (see the Procfile)
        targets[name.strip()] = next(w for w in words[1:] if not w.startswith("-"))
    return targets


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


def log_tail(log_path: Path, lines: int = 40) -> str:
    text = log_path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_until_ready(
    proc: subprocess.Popen[bytes], urls: dict[str, str], timeout: float, log: Path
) -> float:
    started = time.monotonic()
    last_report = 0.0
    while True:
        elapsed = time.monotonic() - started
        if proc.poll() is not None:
            raise RuntimeError(
                f"the demo stack exited ({proc.returncode}) before it answered:\n"
                + log_tail(log)
            )
        state = {name: answers(url) for name, url in urls.items()}
        if all(state.values()):
            print(f"  ready after {elapsed:.1f}s", flush=True)
            return elapsed
        if elapsed > timeout:
            raise RuntimeError(
                f"not ready after {timeout:.0f}s ({state}):\n" + log_tail(log)
            )
        if elapsed - last_report >= 5:
            shown = ", ".join(
                f"{n}: {'up' if ok else 'down'}" for n, ok in state.items()
            )
            print(f"  waiting… {elapsed:4.0f}s  ({shown})", flush=True)
            last_report = elapsed
        time.sleep(0.5)


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


def stop_stack(
    proc: subprocess.Popen[bytes], pgdata: Path, redis_port: int
) -> list[str]:
    """SIGINT to the launcher's process group, like Ctrl-C; then check the servers."""
    notes: list[str] = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
        notes.append(f"devstack exited with {proc.returncode}")
    except subprocess.TimeoutExpired:
        notes.append("devstack ignored SIGINT for 30s: SIGTERM, then SIGKILL")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue

    server = postmaster(pgdata)
    if server is not None:
        try:
            server.wait(timeout=10)
        except psutil.TimeoutExpired:
            notes.append("embedded PostgreSQL still running: pg_ctl stop -m fast")
            pg_ctl_stop(pgdata, server)
    notes.append(
        "embedded PostgreSQL stopped"
        if postmaster(pgdata) is None
        else "embedded PostgreSQL is STILL RUNNING"
    )

    redis = redis_server(redis_port)
    if redis is not None:
        notes.append("embedded Redis still running: SIGTERM")
        redis.terminate()
        try:
            redis.wait(timeout=10)
        except psutil.TimeoutExpired:
            redis.kill()
    notes.append(
        "embedded Redis stopped"
        if redis_server(redis_port) is None
        else "embedded Redis is STILL RUNNING"
    )
    return notes


def pg_ctl_stop(pgdata: Path, server: psutil.Process) -> None:
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    # pg_ctl refuses to run as root; pgserver runs the server as its own user then.
    owner = server.username()
    user = owner if os.geteuid() == 0 and owner != "root" else None
    subprocess.run(
        [str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast", "-w"],
        user=user,
        check=False,
        timeout=60,
    )


def write_report(report: dict[str, object]) -> Path:
    REPORTS.mkdir(exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"bench-memory-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


@dataclass
class SalePeak:
    groups: list[Group]
    samples: int
    at_seconds: float
    exit_code: int


def _pss_or_rss(groups: list[Group]) -> int:
    pss = [g.total("pss") for g in groups]
    if all(value is not None for value in pss):
        return sum(value or 0 for value in pss)
    return sum(g.total("rss") or 0 for g in groups)


def sale_peak(
    mode: str,
    *,
    env: dict[str, str],
    workdir: Path,
    every: float,
    sample: Callable[[], list[Group]],
) -> SalePeak:
    """Run `manage.py sale run` against the measured stack; keep its fullest moment."""
    command = [sys.executable, "manage.py", "sale", "run", "--no-start"]
    command += ["--no-traces", "--reports-dir", str(workdir / "reports")]
    if mode != "both":
        command += ["--mode", mode]
    print(f"==> {' '.join(command[1:])}  (memory every {every:.0f}s)", flush=True)
    sale_log = workdir / "sale.log"
    started = time.monotonic()
    best: list[Group] = []
    best_at, count = 0.0, 0
    with sale_log.open("wb") as log:
        sale = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        last_said = 0.0
        while sale.poll() is None:
            groups = sample()
            count += 1
            if not best or _pss_or_rss(groups) > _pss_or_rss(best):
                best, best_at = groups, time.monotonic() - started
            if time.monotonic() - last_said >= 15:
                last_said = time.monotonic()
                print(
                    f"    {time.monotonic() - started:5.0f}s  now "
                    f"{mib(_pss_or_rss(groups))} MiB, peak {mib(_pss_or_rss(best))} "
                    f"MiB (PSS)",
                    flush=True,
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                sale.wait(every)
    if sale.returncode not in (0, 1):  # 1: the run found lost/duplicated orders
        raise RuntimeError(
            f"the sale run failed ({sale.returncode}):\n" + log_tail(sale_log)
        )
    return SalePeak(best, count, best_at, sale.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle first")
    parser.add_argument("--timeout", type=float, default=120.0, help="start-up limit")
    parser.add_argument("--goal-mib", type=float, default=1024.0, help="peak budget")
    parser.add_argument("--keep", action="store_true", help="keep data dir and log")
    parser.add_argument(
        "--sale",
        choices=["none", "legacy", "strangler", "both"],
        default="strangler",
        help="after the idle figure, run `manage.py sale run` in this mode against "
        "the same stack and report the peak (none: idle only)",
    )
    parser.add_argument(
        "--every", type=float, default=2.0, help="seconds between samples in the sale"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    # pgserver runs PostgreSQL as its own user when we are root: let it in.
    workdir.chmod(0o755)
    data_dir = workdir / "data"
    pgdata = data_dir / "pg"
    log_path = workdir / "devstack.log"
    shop_port, warehouse_port, redis_port, edge_port, orders_port = free_ports(5)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DEVSTACK_EMBEDDED="1",
        DEVSTACK_DATA_DIR=str(data_dir),
        EMBEDDED_REDIS_PORT=str(redis_port),
        SHOP_PORT=str(shop_port),
        WAREHOUSE_PORT=str(warehouse_port),
        WAREHOUSE_URL=f"http://127.0.0.1:{warehouse_port}",
        EDGE_PORT=str(edge_port),
        ORDERS_PORT=str(orders_port),
        ORDERS_URL=f"http://127.0.0.1:{orders_port}",
        SHOP_URL=f"http://127.0.0.1:{shop_port}",
        DJANGO_DEBUG="0",
        PYTHONUNBUFFERED="1",
        # The Procfile names bare `gunicorn`: run the one beside this interpreter.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    urls = {
        "shop": f"http://127.0.0.1:{shop_port}/shop/",
        "warehouse": f"http://127.0.0.1:{warehouse_port}/healthz",
        "edge": f"http://127.0.0.1:{edge_port}/_edge/healthz",
        "orders": f"http://127.0.0.1:{orders_port}/readyz",
    }
    print(f"==> python -m common.devstack demo  (embedded servers in {data_dir})")
    print(
        f"    shop :{shop_port}  orders :{orders_port}  warehouse :{warehouse_port}"
        f"  edge :{edge_port}  redis :{redis_port}"
    )
    print(f"    log: {log_path}", flush=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "common.devstack", "demo"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: one SIGINT stops it all
        )
    exit_code = 0
    peak: SalePeak | None = None
    try:
        startup = wait_until_ready(proc, urls, args.timeout, log_path)
        print(f"==> settling for {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        groups = collect(proc.pid, pgdata, redis_port)
        if args.sale != "none":
            peak = sale_peak(
                args.sale,
                env={
                    **env,
                    # The servers the launcher started (common/devstack.py's URLs).
                    "DATABASE_URL": "postgresql://postgres:@"
                    + str(pgdata).replace("/", "%2F")
                    + "/postgres",
                    "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                },
                workdir=workdir,
                every=args.every,
                sample=lambda: collect(proc.pid, pgdata, redis_port),
            )
    except RuntimeError as error:
        print(f"!! {error}", file=sys.stderr)
        exit_code = 1
    finally:
        print("==> stopping the stack (SIGINT to its process group)", flush=True)
        for note in stop_stack(proc, pgdata, redis_port):
            print(f"    {note}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if exit_code:
        return exit_code

    everything = Group("total", [p for g in groups for p in g.processes])
    print()
    print_table(groups, everything)
    rss, pss = everything.total("rss") or 0, everything.total("pss")
    goal = int(args.goal_mib * MIB)
    print()
    print(f"idle stack: {mib(rss)} MiB RSS (sum; shared pages counted per process)")
    if pss is not None:
        print(f"            {mib(pss)} MiB PSS (shared pages split between sharers)")
    print(
        f"goal: {mib(goal)} MiB at the peak of a sale; idle RSS uses "
        f"{100 * rss / goal:.0f}% of it"
    )
    if peak is not None:
        peak_all = Group("total", [p for g in peak.groups for p in g.processes])
        peak_rss, peak_pss = peak_all.total("rss") or 0, peak_all.total("pss")
        print()
        print(
            f"at the peak of the sale ({args.sale}; {peak.samples} samples, the "
            f"largest PSS taken, {peak.at_seconds:.0f}s into the run):"
        )
        print_table(peak.groups, peak_all)
        print()
        print(f"sale peak:  {mib(peak_rss)} MiB RSS (sum)")
        if peak_pss is not None:
            verdict = "within" if peak_pss <= goal else "ABOVE"
            print(f"            {mib(peak_pss)} MiB PSS -> {verdict} the goal")
        print(f"            the sale's exit code: {peak.exit_code}")
    report = {
        "benchmark": "memory",
        "state": "idle" if peak is None else f"idle and sale ({args.sale})",
        "command": "python -m common.devstack demo (DEVSTACK_EMBEDDED=1)",
        "settle_seconds": args.settle,
        "startup_seconds": round(startup, 2),
        "ports": {
            "shop": shop_port,
            "warehouse": warehouse_port,
            "edge": edge_port,
            "orders": orders_port,
            "redis": redis_port,
        },
        "goal_bytes": goal,
        "total": {
            "processes": len(everything.processes),
            "rss_bytes": rss,
            "pss_bytes": pss,
            "uss_bytes": everything.total("uss"),
        },
        "groups": [
            {
                "name": g.name,
                "rss_bytes": g.total("rss"),
                "pss_bytes": g.total("pss"),
                "uss_bytes": g.total("uss"),
                "processes": [asdict(p) for p in g.processes],
            }
            for g in groups
        ],
        "sale_peak": None
        if peak is None
        else {
            "mode": args.sale,
            "samples": peak.samples,
            "at_seconds": round(peak.at_seconds, 1),
            "sale_exit_code": peak.exit_code,
            "processes": sum(len(g.processes) for g in peak.groups),
            "rss_bytes": sum(g.total("rss") or 0 for g in peak.groups),
            "pss_bytes": sum(g.total("pss") or 0 for g in peak.groups),
            "groups": [
                {
                    "name": g.name,
                    "rss_bytes": g.total("rss"),
                    "pss_bytes": g.total("pss"),
                }
                for g in peak.groups
            ],
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_bytes": psutil.virtual_memory().total,
        },
    }
    print(f"report: {write_report(report).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
