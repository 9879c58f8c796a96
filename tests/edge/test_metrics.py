"""The edge's metrics helpers, on prometheus_client's own multiprocess files."""

from __future__ import annotations

import uuid

from prometheus_client import CollectorRegistry, Histogram

from edge_router.metrics import BUCKETS, latency_observe_many


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_many_observations_at_once_are_the_same_as_one_by_one() -> None:
    # given two histograms alike, with the edge's buckets
    registry = CollectorRegistry()
    name = f"bulk_{uuid.uuid4().hex}"
    one_by_one = Histogram(name + "_a", "a", buckets=BUCKETS, registry=registry)
    at_once = Histogram(name + "_b", "b", buckets=BUCKETS, registry=registry)
    # when one takes each observation alone and the other the same ones by count
    for seconds, times in [(0.0004, 7), (0.003, 1), (0.02, 40), (3.0, 2), (99.0, 3)]:
        for _ in range(times):
            one_by_one.observe(seconds)
        latency_observe_many(at_once, seconds, times)
    # then their buckets, count and sum are the same
    expected = {
        (n.replace("_a_", "_b_"), le): v for (n, le), v in _samples(one_by_one).items()
    }
    got = _samples(at_once)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-9, key
    assert got[(name + "_b_count", "")] == 53
