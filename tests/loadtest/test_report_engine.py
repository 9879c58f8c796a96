"""The sale report names the edge's engine (what each mode's edge said it ran), and
reads the traces of a run through nginx as traces that start at the origin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.collect import traces_sale_args
from loadtest.repeats import repeats_block, repeats_markdown
from loadtest.report import engine_named


def _mode(engine: str | None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "tourney_ratio": {"ratio": 2.0, "sale_samples": 10},
        "muskie_accept": {"p50_ms": 5.0, "p99_ms": 9.0},
        "muskie_sold_out": {"p99_ms": 3.0},
        "allocation": {"last_sold_after_s": 1.0},
        "queue": {"peak_depth": 4},
        "drain": {"measured_per_s": 3.0},
        "warehouse": {"refused": 0},
        "generator": {"cpu_seconds": 1.0},
    }
    if engine is not None:
        figures["edge"] = {"engine": engine, "mode": "legacy", "server": ""}
    return figures


def _summary(*engines: str | None, asked: str = "python") -> dict[str, Any]:
    modes = dict(
        zip(("legacy", "strangler"), (_mode(e) for e in engines), strict=False)
    )
    return {"modes": modes, "run": {"edge_engine": asked}}


def test_the_engine_named_is_the_one_each_mode_s_edge_said() -> None:
    assert engine_named(_summary("nginx", "nginx")) == "nginx"
    assert engine_named(_summary("python", "python")) == "python"
    # a stack restarted on another engine between the modes: both, in order
    assert engine_named(_summary("python", "nginx")) == "python then nginx"


def test_a_report_whose_modes_did_not_say_names_the_engine_the_run_asked_for() -> None:
    assert engine_named(_summary(None, None, asked="nginx")) == "nginx"


def test_repeats_keep_the_engine_of_every_round() -> None:
    rounds = [_summary("nginx", "nginx"), _summary("nginx", "nginx")]

    block = repeats_block(rounds)

    assert block["edge_engines"] == ["nginx"]
    assert "the edge on the nginx engine" in repeats_markdown(block)[0]


def test_under_nginx_the_traces_of_purchases_are_not_asked_for_an_edge_span(
    tmp_path: Path,
) -> None:
    # The nginx engine starts no trace: a purchase's trace starts at the origin, and
    # `traces sale` would call every one incomplete for want of an edge span.
    nginx = traces_sale_args(tmp_path, 60, engine="nginx")
    python = traces_sale_args(tmp_path, 60, engine="python")

    assert nginx[:2] == ["traces", "sale"]
    assert "--no-edge" in nginx
    assert "--no-edge" not in python
    assert python == nginx[:-1]
