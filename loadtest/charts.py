"""The sale run's charts (matplotlib, PNG), both modes on each, time from load start.

tourney-latency.png   Tourney page p50/p95/p99 over time
muskie-accept.png     Muskie accept latency over time (accepted buys)
warehouse.png         warehouse orders in flight, with capacity and concurrency lines
queue.png             the fulfillment queue's depth and the orders waiting
orders.png            orders accepted and fulfilled over time
comparison.png        the four that tell the story, in one picture (the README's):
                      Tourney latency, the queue, Muskie accepts, orders
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from loadtest.journal import attempts_read, samples_read
from loadtest.phases import sale_window
from loadtest.sale_figures import epoch
from loadtest.stats import TOURNEY, series

COLOURS = {"legacy": "#c0392b", "strangler": "#1f77b4"}
QUANTILE_STYLES = {"p50": ":", "p95": "--", "p99": "-"}
BUCKET = 2.0


class ModeData:
    """One mode's records, read back from its folder."""

    def __init__(self, directory: Path, result: dict[str, Any]) -> None:
        self.mode = result["mode"]
        self.phases = result["phases"]
        self.t0 = float(self.phases["started"])
        self.samples = samples_read(directory / "samples.csv")
        self.attempts = attempts_read(directory / "attempts.json")
        self.watch = json.loads((directory / "watch.json").read_text())
        # The faults injected in this mode (loadtest/faults.py), for shading.
        self.faults = (result.get("faults") or {}).get("injected", [])
        inputs = json.loads((directory / "reconcile-inputs.json").read_text())
        numbers = {str(row["number"]) for row in inputs["muskie_store"]}
        self.fulfilled_at = sorted(
            epoch(f["created_at"])
            for f in inputs["fulfilments"]
            if f["order_ref"] in numbers
        )

    def sale_window(self) -> tuple[float, float]:
        start, end = sale_window(self.phases["phases"])
        return start - self.t0, end - self.t0


def _shade_sale(ax: Axes, data: list[ModeData]) -> None:
    if data:
        start, end = data[0].sale_window()
        ax.axvspan(start, end, color="#f4d03f", alpha=0.15, label="sale")
    _shade_faults(ax, data)


def _shade_faults(ax: Axes, data: list[ModeData]) -> None:
    """Each injected fault's window (a kill: a line), named at the top of the chart."""
    labelled = False
    for d in data[:1]:
        for fault in d.faults:
            if not fault["ok"]:
                continue
            start, end = fault["started"] - d.t0, fault["ended"] - d.t0
            label = None if labelled else "fault"
            if end - start < 0.5:
                ax.axvline(start, color="#c0392b", linewidth=1.2, label=label)
            else:
                ax.axvspan(start, end, color="#c0392b", alpha=0.12, label=label)
            labelled = True
            name = fault["value"] if fault["name"] == "kill" else fault["name"]
            ax.annotate(
                name.replace("warehouse.", "wh."),
                xy=(start, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=6,
                va="top",
                color="#c0392b",
            )


def _tourney(ax: Axes, data: list[ModeData]) -> None:
    for d in data:
        points = [(s[0], s[3]) for s in d.samples if s[1] == TOURNEY]
        rows = series(points, start=d.t0, bucket=BUCKET)
        for q, style in QUANTILE_STYLES.items():
            ax.plot(
                [r["t"] for r in rows],
                [r[q] for r in rows],
                linestyle=style,
                color=COLOURS.get(d.mode),
                label=f"{d.mode} {q}",
            )
    _shade_sale(ax, data)
    ax.set_yscale("log")
    ax.set_title("Tourney rod page latency (not on sale)")
    ax.set_ylabel("ms (log)")


def _accept(ax: Axes, data: list[ModeData]) -> None:
    for d in data:
        points = [
            (a.started, a.latency_ms if a.from_due_ms is None else a.from_due_ms)
            for a in d.attempts
            if a.kind == "muskie" and a.outcome == "accepted"
        ]
        rows = series(points, start=d.t0, bucket=BUCKET)
        for q in ("p50", "p99"):
            ax.plot(
                [r["t"] for r in rows],
                [r[q] for r in rows],
                linestyle=QUANTILE_STYLES[q],
                color=COLOURS.get(d.mode),
                label=f"{d.mode} {q}",
            )
    _shade_sale(ax, data)
    ax.set_yscale("log")
    ax.set_title("Muskie buy: time to accepted, from when the buyer was due")
    ax.set_ylabel("ms (log)")


def _warehouse(ax: Axes, data: list[ModeData], summary: dict[str, Any]) -> None:
    capacity = concurrency = None
    for d in data:
        ax.step(
            [w["at"] - d.t0 for w in d.watch],
            [w["in_flight"] for w in d.watch],
            where="post",
            color=COLOURS.get(d.mode),
            label=f"{d.mode} in flight",
        )
        warehouse = summary["modes"][d.mode]["warehouse"]
        capacity = warehouse["capacity"]
        concurrency = warehouse["fulfillment_concurrency"]
    if capacity is not None:
        ax.axhline(capacity, color="black", linewidth=1.5, label="capacity (503 above)")
    if concurrency is not None:
        ax.axhline(concurrency, color="grey", linestyle="--", label="queue concurrency")
    _shade_sale(ax, data)
    ax.set_title("Warehouse: orders being packed")
    ax.set_ylabel("orders in flight")


def _queue(ax: Axes, data: list[ModeData], summary: dict[str, Any]) -> None:
    for d in data:
        times = [w["at"] - d.t0 for w in d.watch]
        ax.plot(times, [w["queue_depth"] for w in d.watch], color=COLOURS.get(d.mode),
                label=f"{d.mode} queue (Redis)")  # fmt: skip
        if d.mode == "strangler":
            ax.plot(times, [w["waiting"] for w in d.watch], color=COLOURS.get(d.mode),
                    linestyle="--", label="strangler orders waiting")  # fmt: skip
            rate = summary["modes"][d.mode]["drain"]["configured_per_s"]
            _configured_drain(ax, times, [w["waiting"] for w in d.watch], rate)
    _shade_sale(ax, data)
    ax.set_title("Fulfillment queue depth")
    ax.set_ylabel("messages / orders")


def _configured_drain(
    ax: Axes, times: list[float], waiting: list[int], rate: float | None
) -> None:
    """From the peak of the orders waiting, the straight line down at the configured
    drain rate: the measured line should run beside it."""
    if not rate or not waiting or max(waiting) == 0:
        return
    peak = max(range(len(waiting)), key=waiting.__getitem__)
    top, at = waiting[peak], times[peak]
    ax.plot([at, at + top / rate], [top, 0], color="black", linestyle=":",
            label=f"configured drain ({rate:g}/s)")  # fmt: skip


def _orders(ax: Axes, data: list[ModeData]) -> None:
    for d in data:
        accepted = sorted(
            a.started + a.latency_ms / 1000 - d.t0
            for a in d.attempts
            if a.kind == "muskie" and a.outcome == "accepted"
        )
        fulfilled = [t - d.t0 for t in d.fulfilled_at]
        colour = COLOURS.get(d.mode)
        ax.step(accepted, range(1, len(accepted) + 1), where="post", color=colour,
                label=f"{d.mode} accepted")  # fmt: skip
        ax.step(fulfilled, range(1, len(fulfilled) + 1), where="post", color=colour,
                linestyle="--", label=f"{d.mode} fulfilled")  # fmt: skip
    _shade_sale(ax, data)
    ax.set_title("Muskie orders accepted and fulfilled")
    ax.set_ylabel("orders")


def _finish(ax: Axes) -> None:
    ax.set_xlabel("seconds since the load started (baseline, then the sale)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def write_all(
    directory: Path, results: dict[str, dict[str, Any]], summary: dict[str, Any]
) -> list[str]:
    data = [ModeData(directory / mode, result) for mode, result in results.items()]
    singles = {
        "tourney-latency.png": lambda ax: _tourney(ax, data),
        "muskie-accept.png": lambda ax: _accept(ax, data),
        "warehouse.png": lambda ax: _warehouse(ax, data, summary),
        "queue.png": lambda ax: _queue(ax, data, summary),
        "orders.png": lambda ax: _orders(ax, data),
    }
    for name, draw in singles.items():
        fig, ax = plt.subplots(figsize=(10, 4.5))
        draw(ax)
        _finish(ax)
        fig.tight_layout()
        fig.savefig(directory / name, dpi=110)
        plt.close(fig)
    fig, axes = plt.subplots(2, 2, figsize=(15, 9))
    for ax, draw in zip(
        axes.flat,
        (singles["tourney-latency.png"], singles["queue.png"],
         singles["muskie-accept.png"], singles["orders.png"]),
        strict=True,
    ):  # fmt: skip
        draw(ax)
        _finish(ax)
    modes = " vs ".join(results)
    fig.suptitle(f"Flash sale of the Muskie rod: {modes}", fontsize=14)
    fig.tight_layout()
    fig.savefig(directory / "comparison.png", dpi=100)
    plt.close(fig)
    return ["comparison.png", *singles]
