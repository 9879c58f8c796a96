"""`python manage.py sale run` / `make sale`: the flash sale, mode by mode, one report.

For each mode (legacy, then strangler): reset (stock, sale, warehouse window), set the
edge's mode, run the load (a no-sale baseline of browsers, then the sale), drain
(until every accepted order is fulfilled or failed), reconcile. Then the report:
`reports/sale-<timestamp>/` with summary.json, summary.md, charts, Locust's CSV and
HTML per mode. Exit 1 when any order was lost, duplicated or oversold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import cpus
from loadtest import identity, report
from loadtest.config import (
    CROWDS,
    MUSKIE_SKU,
    TOURNEY_SKU,
    Endpoints,
    LoadOptions,
    RunOptions,
)
from loadtest.journal import (
    attempts_read,
    attempts_write,
    samples_read,
    samples_write,
)
from loadtest.operations import ROOT, Stack, StackError, manage
from loadtest.reconcile import orders_store, reconcile, shop_store
from loadtest.sampler import Sampler
from loadtest.stack import StartedStack, stack_start
from loadtest.stats import figures, is_browse, is_muskie_buy, is_tourney, percentile

Say = Callable[[str], None]
# The crowds' processes are given this long to start (import Locust, build users)
# before the load starts, for both at the same second.
LOAD_START_SECONDS = 3.0
EXIT_OK, EXIT_INVARIANT, EXIT_ERROR = 0, 1, 2


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def default_say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


class SaleRun:
    def __init__(
        self,
        options: RunOptions,
        endpoints: Endpoints,
        *,
        env: dict[str, str] | None = None,
        say: Say = default_say,
    ) -> None:
        self.options = options
        self.endpoints = endpoints
        # The processes this run starts pick their own settings (manage.py set ours).
        self.env = {
            k: v
            for k, v in (os.environ if env is None else env).items()
            if k != "DJANGO_SETTINGS_MODULE"
        }
        self.say = say
        self.started = time.time()
        self.report_dir = Path(options.reports_dir) / f"sale-{_stamp()}"
        if not self.report_dir.is_absolute():
            self.report_dir = ROOT / self.report_dir
        self.run_id = format(int(self.started), "x")[-6:]
        self.stack = Stack(endpoints, self.env)
        self.started_stack: StartedStack | None = None
        # As the launcher resolves it for the stack (checked by `sale run` first).
        self.sale_path_cpus = cpus.sale_path_cpus(self.env)
        self.source_addresses = identity.source_addresses_work(
            endpoints.edge.split("//", 1)[-1]
        )

    # --- the whole run ---------------------------------------------------------------

    def run(self) -> int:
        # The run says what it does itself; a line per HTTP call would drown it.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.report_dir.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] | None = None
        self.say(f"sale run: report in {self.report_dir}")
        try:
            self._ensure_stack()
            results = {}
            for mode in self.options.modes:
                results[mode] = self.run_mode(mode)
            traces = self._traces() if self.options.traces else None
            summary = report.summary_build(
                results,
                run=self._run_facts(),
                traces=traces,
            )
            report.write_all(self.report_dir, summary, results, say=self.say)
        except StackError as error:
            self.say(f"sale run failed: {error}")
            return EXIT_ERROR
        finally:
            self.stack.close()
            if self.started_stack is not None:
                self.say("stopping the stack this run started")
                self.started_stack.stop()
        assert summary is not None
        broken = report.invariants_broken(summary)
        if broken:
            self.say("INVARIANTS BROKEN: " + "; ".join(broken))
            return EXIT_INVARIANT
        self.say("every order accounted for: none lost, duplicated or oversold")
        return EXIT_OK

    def _ensure_stack(self) -> None:
        answers = self.stack.answers()
        if all(answers.values()):
            return
        if any(answers.values()) or not self.options.start_stack:
            down = ", ".join(name for name, up in answers.items() if not up)
            raise StackError(
                f"part of the stack does not answer ({down}); start it all "
                "(`make demo`) or stop it all and let the run start it"
            )
        self.say("no stack answers: starting `python -m common.devstack demo`")
        self._backing_resolve()
        self.started_stack = stack_start(
            self.stack,
            env=self.env,
            log_path=self.report_dir / "stack.log",
            say=self.say,
        )
        self.say("the stack is up")

    def _backing_resolve(self) -> None:
        """PostgreSQL and Redis as the launcher would pick them, resolved here, so
        this run's `manage.py` calls reach the same ones. Embedded servers started
        here (DEVSTACK_EMBEDDED=1, or nothing on 5432/6379) live as long as the run.
        """
        from common import devstack

        backing = devstack.resolve_backing()
        for note in backing.notes:
            self.say(note)
        self.env["DATABASE_URL"] = backing.database_url
        self.env["REDIS_URL"] = backing.redis_url
        self.endpoints = replace(self.endpoints, redis_url=backing.redis_url)
        self.stack.close()
        self.stack = Stack(self.endpoints, self.env)

    def _run_facts(self) -> dict[str, Any]:
        return {
            "started": _iso(self.started),
            "finished": _iso(time.time()),
            "report_dir": str(self.report_dir),
            "units": self.options.units,
            "load": self.options.load,
            "fulfillment_concurrency": self.options.fulfillment_concurrency,
            "source_addresses": self.source_addresses,
            "cpus": os.cpu_count(),
            "sale_path_cpus": self.sale_path_cpus or "off",
            "python": sys.version.split()[0],
            "endpoints": {
                "edge": self.endpoints.edge,
                "shop": self.endpoints.shop,
                "orders": self.endpoints.orders,
                "warehouse": self.endpoints.warehouse,
            },
            "stack_started_by_run": self.started_stack is not None,
        }

    # --- one mode --------------------------------------------------------------------

    def run_mode(self, mode: str) -> dict[str, Any]:
        tag = f"{self.run_id}{mode[0]}"
        out = self.report_dir / mode
        out.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()
        self.say(f"[{mode}] reset: {self.options.units} Muskie rods, fresh warehouse")
        for note in self.stack.reset(mode=mode, units=self.options.units, run_tag=tag):
            self.say(f"[{mode}]   {note}")
        self.stack.edge_mode(mode)
        self.say(f"[{mode}] the edge is in {mode} mode")
        since = time.time() - 1.0
        options = LoadOptions(
            host=self.endpoints.edge,
            mode=mode,
            run_tag=tag,
            out_dir=str(out),
            **self.options.load,
        )
        if not self.source_addresses and options.source_addresses:
            self.say(
                f"[{mode}] cannot bind 127.x source addresses: one address for all"
            )
            options = replace(options, source_addresses=False)
        sampler = Sampler(self.stack, board=mode == "strangler")
        sampler.start()
        try:
            load_peak = self._load(mode, options, out, sampler)
            _, drained = self._drain(mode, sampler)
        finally:
            sampler.stop()
        warehouse = self.stack.warehouse_stats()
        result = self._reconcile(mode, tag, out, since)
        phases = json.loads((out / "phases.json").read_text())
        # From the end of the load (the fade's last buyer gone) until nothing waited:
        # buyers still following their orders are part of the drain, not the load.
        busy = [
            s.at
            for s in sampler.samples
            if s.at >= phases["load_end"]
            and (s.in_flight or s.queue_depth or (mode == "strangler" and s.waiting))
        ]
        drain_seconds = round(max(busy) - phases["load_end"], 2) if busy else 0.0
        (out / "watch.json").write_text(json.dumps(sampler.as_rows()))
        return {
            "mode": mode,
            "run_tag": tag,
            "phases": phases,
            "figures": self._figures(out, phases),
            "orders": result["muskie"],
            "tourney_orders": result["tourney"],
            "warehouse": {
                "capacity": warehouse["capacity"],
                "peak_in_flight": warehouse["peak_in_flight"],
                "refused": warehouse["refused"],
                "fulfilled": warehouse["fulfilled"],
                # MU: the orders service's (through the queue), LF: the legacy shop's.
                "peak_in_flight_by_source": warehouse.get(
                    "peak_in_flight_by_source", {}
                ),
            },
            "queue": {
                "peak_depth": max((s.queue_depth for s in sampler.samples), default=0),
                "peak_waiting": max((s.waiting for s in sampler.samples), default=0),
            },
            "drain_seconds": drain_seconds,
            "drained": drained,
            "load_average": {
                "before": [round(x, 2) for x in load_before],
                "peak_1m": round(max(load_peak, os.getloadavg()[0]), 2),
                "after": [round(x, 2) for x in os.getloadavg()],
            },
            "sampler_errors": sampler.errors,
        }

    def _load(
        self, mode: str, options: LoadOptions, out: Path, sampler: Sampler
    ) -> float:
        """Run one Locust process per crowd; print progress; the peak load average.

        The shoppers the run watches and the flash-sale buyers are played by two
        processes, started together on the same clock: a single gevent loop busy
        with 60 buyers delayed the very Tourney requests the run times.
        """
        start_at = time.time() + LOAD_START_SECONDS
        processes: dict[str, subprocess.Popen[str]] = {}
        logs = []
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        try:
            for crowd in CROWDS:
                crowd_options = replace(options, crowd=crowd, start_at=start_at)
                options_file = out / f"load-options-{crowd}.json"
                options_file.write_text(json.dumps(crowd_options.to_json(), indent=1))
                log = (out / f"locust-{crowd}.log").open("wb")
                logs.append(log)
                process = subprocess.Popen(
                    [
                        *self._cpus_prefix(crowd),
                        *(sys.executable, "-m", "loadtest.load", str(options_file)),
                    ],
                    cwd=ROOT,
                    env={**self.env, "PYTHONUNBUFFERED": "1"},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
                processes[crowd] = process
                threading.Thread(
                    target=_lines_into, args=(crowd, process, lines), daemon=True
                ).start()
            peak_load = self._follow_load(mode, processes, lines, sampler)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                process.wait()
            for log in logs:
                log.close()
        failed = [(c, p.returncode) for c, p in processes.items() if p.returncode]
        # The one that failed first, not the one stopped because of it (SIGKILL).
        failed.sort(key=lambda failure: failure[1] == -signal.SIGKILL)
        if failed:
            crowd, code = failed[0]
            raise StackError(
                f"the load generator ({crowd}) failed ({code}); "
                f"see {out}/locust-{crowd}.log"
            )
        self._merge_crowds(out)
        return peak_load

    def _cpus_prefix(self, crowd: str) -> list[str]:
        """The flash-sale buyers stand for customers' own devices: on the sale
        path's CPUs (SALE_PATH_CPUS), not on the ones the shop is left with."""
        if crowd != "buyers" or not self.sale_path_cpus:
            return []
        return ["taskset", "-c", self.sale_path_cpus]

    def _follow_load(
        self,
        mode: str,
        processes: dict[str, subprocess.Popen[str]],
        lines: queue.Queue[tuple[str, str | None]],
        sampler: Sampler,
    ) -> float:
        """Until every crowd's process is done (or one has failed)."""
        peak_load = 0.0
        last_said = 0.0
        latest: dict[str, dict[str, Any]] = {}
        running = set(processes)
        while running:
            crowd, line = lines.get()
            if line is None:
                running.discard(crowd)
                if processes[crowd].wait() != 0:
                    return peak_load  # _load reports it and stops the others
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                peak_load = max(peak_load, os.getloadavg()[0])
                if event.get("event") not in {"progress", "finishing"}:
                    continue
                latest[crowd] = event
                if time.monotonic() - last_said >= 2.0:
                    self.say(self._progress(mode, _crowds_joined(latest), sampler))
                    last_said = time.monotonic()
        return peak_load

    def _merge_crowds(self, out: Path) -> None:
        """The crowds' samples, attempts and phases as one: samples.csv,
        attempts.json, phases.json (phases as the shoppers kept them; the load
        ended when the last crowd's did)."""
        samples: list[tuple[float, str, int, float, bool]] = []
        attempts = []
        kept = {}
        for crowd in CROWDS:
            samples += samples_read(out / f"samples-{crowd}.csv")
            attempts += attempts_read(out / f"attempts-{crowd}.json")
            kept[crowd] = json.loads((out / f"phases-{crowd}.json").read_text())
        samples.sort(key=lambda sample: sample[0])
        samples_write(out / "samples.csv", samples)
        attempts_write(out / "attempts.json", attempts)
        phases = {
            **kept[CROWDS[0]],
            "load_end": max(p["load_end"] for p in kept.values()),
            "ended": max(p["ended"] for p in kept.values()),
            "crowds": {
                crowd: {k: p[k] for k in ("started", "load_end", "ended")}
                for crowd, p in kept.items()
            },
        }
        (out / "phases.json").write_text(json.dumps(phases, indent=1))

    def _progress(self, mode: str, event: dict[str, Any], sampler: Sampler) -> str:
        latest = sampler.latest()
        depth = latest.queue_depth if latest else 0
        in_flight = latest.in_flight if latest else 0
        if event.get("event") == "finishing":
            head = f"finishing {event.get('purchases', 0)} purchases under way"
        else:
            head = (
                f"{event.get('phase', event.get('event', '')):8} "
                f"users {event.get('users', 0):4d}  rps {event.get('rps', 0):6.1f}  "
                f"failures {event.get('fail_ratio', 0):6.1%}  "
                f"accepted {event.get('accepted', 0):4d}"
            )
        return (
            f"[{mode}] {head}  queue {depth:4d}  "
            f"warehouse in-flight {in_flight}  load {os.getloadavg()[0]:.1f}"
        )

    def _drain(self, mode: str, sampler: Sampler) -> tuple[float, bool]:
        """Until nothing waits: no order queued or in the warehouse or in flight."""
        started = time.monotonic()
        last_said = 0.0
        while True:
            sample = sampler.take()
            waiting = sample.waiting if mode == "strangler" else 0
            if not (waiting or sample.queue_depth or sample.in_flight):
                seconds = round(time.monotonic() - started, 2)
                self.say(f"[{mode}] drained in {seconds:.1f}s")
                return seconds, True
            if time.monotonic() - started > self.options.drain_timeout:
                self.say(f"[{mode}] drain timed out: {waiting} orders still waiting")
                return round(time.monotonic() - started, 2), False
            if time.monotonic() - last_said >= 2.0:
                self.say(
                    f"[{mode}] drain: {waiting} orders waiting, queue "
                    f"{sample.queue_depth}, warehouse in-flight {sample.in_flight}"
                )
                last_said = time.monotonic()
            time.sleep(0.25)

    def _reconcile(
        self, mode: str, tag: str, out: Path, since: float
    ) -> dict[str, dict[str, Any]]:
        attempts = attempts_read(out / "attempts.json")
        fulfilments = self.stack.fulfilments_since(_iso(since))
        tourney_rows = self.stack.shop_orders_since(TOURNEY_SKU, _iso(since))
        if mode == "strangler":
            sale, muskie_rows = self.stack.sale_orders()
            muskie_store = orders_store(muskie_rows)
            allocation = int(sale["units_allocated"])
        else:
            sale = {}
            muskie_rows = self.stack.shop_orders_since(MUSKIE_SKU, _iso(since))
            muskie_store = shop_store(muskie_rows, MUSKIE_SKU)
            allocation = self.options.units
        (out / "reconcile-inputs.json").write_text(
            json.dumps(
                {
                    "mode": mode,
                    "run_tag": tag,
                    "allocation": allocation,
                    "sale": sale,
                    "muskie_store": muskie_rows,
                    "tourney_store": tourney_rows,
                    "fulfilments": fulfilments,
                },
                indent=1,
            )
        )
        muskie = reconcile(
            attempts=attempts,
            kind="muskie",
            run_tag=tag,
            store=muskie_store,
            fulfilments=fulfilments,
            allocation=allocation,
        )
        tourney = reconcile(
            attempts=attempts,
            kind="tourney",
            run_tag=tag,
            store=shop_store(tourney_rows, TOURNEY_SKU),
            fulfilments=fulfilments,
            allocation=None,
        )
        self.say(
            f"[{mode}] reconciled: {muskie['accepted']} Muskie orders accepted, "
            f"{muskie['fulfilled']} fulfilled, {muskie['failed']} failed, "
            f"lost {muskie['lost']}, duplicated {muskie['duplicated']}, "
            f"oversold {muskie['oversold']}; Tourney lost {tourney['lost']}, "
            f"duplicated {tourney['duplicated']}"
        )
        return {"muskie": muskie, "tourney": tourney}

    def _figures(self, out: Path, phases: dict[str, Any]) -> dict[str, Any]:
        samples = samples_read(out / "samples.csv")
        bounds = {p["name"]: (p["start"], p["end"]) for p in phases["phases"]}
        base = bounds["baseline"]
        sale = (bounds["ramp"][0], bounds["fade"][1])
        attempts = attempts_read(out / "attempts.json")
        accepted_ms = [
            a.latency_ms
            for a in attempts
            if a.kind == "muskie" and a.outcome == "accepted"
        ]
        return {
            "baseline": {
                "tourney": figures(
                    samples, which=is_tourney, start=base[0], end=base[1]
                )
            },
            "sale": {
                "tourney": figures(
                    samples, which=is_tourney, start=sale[0], end=sale[1]
                ),
                "browse": figures(samples, which=is_browse, start=sale[0], end=sale[1]),
                "muskie_buy": figures(
                    samples, which=is_muskie_buy, start=sale[0], end=phases["ended"]
                ),
            },
            "muskie_accept": {
                "accepted": len(accepted_ms),
                "p50_ms": _r(percentile(accepted_ms, 50)),
                "p95_ms": _r(percentile(accepted_ms, 95)),
                "p99_ms": _r(percentile(accepted_ms, 99)),
            },
        }

    # --- traces ----------------------------------------------------------------------

    def _traces(self) -> dict[str, Any]:
        window = int(time.time() - self.started) + 30
        target = self.report_dir / "traces"
        self.say(f"traces: `manage.py traces sale --report {target} --last {window}s`")
        try:
            done = manage(
                "traces", "sale", "--report", str(target), "--last", f"{window}s",
                env=self.env, timeout=300,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": "`traces sale` did not finish in 300 s"}
        segments = target / "trace-segments.json"
        if done.code != 0 or not segments.exists():
            error = (done.stderr or done.stdout).strip().splitlines()
            return {"ok": False, "error": error[-1] if error else f"exit {done.code}"}
        return {"ok": True, **json.loads(segments.read_text())}


def _lines_into(
    crowd: str,
    process: subprocess.Popen[str],
    lines: queue.Queue[tuple[str, str | None]],
) -> None:
    """Each line the crowd's process prints, then None when it stops printing."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.put((crowd, line))
    lines.put((crowd, None))


def _crowds_joined(latest: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One progress event from the crowds' latest: phase, users, rps, failures."""
    events = list(latest.values())
    rps = sum(float(e.get("rps", 0) or 0) for e in events)
    failed = sum(float(e.get("rps", 0) or 0) * e.get("fail_ratio", 0) for e in events)
    finishing = [e for e in events if e.get("event") == "finishing"]
    phases = [e["phase"] for e in events if e.get("phase")]
    return {
        "event": "finishing" if finishing else "progress",
        "phase": phases[0] if phases else "",
        "users": sum(int(e.get("users", 0) or 0) for e in events),
        "rps": round(rps, 1),
        "fail_ratio": failed / rps if rps else 0.0,
        "accepted": sum(int(e.get("accepted", 0) or 0) for e in events),
        "purchases": sum(int(e.get("purchases", 0) or 0) for e in events),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run(
    options: RunOptions,
    endpoints: Endpoints | None = None,
    *,
    env: dict[str, str] | None = None,
    say: Say = default_say,
) -> int:
    """The entry point `manage.py sale run` calls."""
    endpoints = endpoints or Endpoints.from_env(env)
    return SaleRun(options, endpoints, env=env, say=say).run()
