"""The reconciliation, on the records of real sale runs on the development machine.

`data/*-run.json.gz` hold what two real `sale run`s wrote (each mode's attempts.json
and reconcile-inputs.json): the legacy run had two 504s from the edge, one of which
the shop completed anyway (an unconfirmed order); the strangler run is the one the
README reports. Each test starts from that real data; the ones that check a fault
take one real row away or copy it, as the fault would.
"""

from __future__ import annotations

import copy
import gzip
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from loadtest.journal import Attempt
from loadtest.reconcile import (
    StoreOrder,
    orders_store,
    reconcile,
    shop_store,
)

DATA = Path(__file__).parent / "data"


@dataclass
class Run:
    mode: str
    run_tag: str
    attempts: list[Attempt]
    store: list[StoreOrder]
    tourney_store: list[StoreOrder]
    fulfilments: list[dict[str, Any]]
    allocation: int

    def reconcile(self, kind: str = "muskie", **changes: Any) -> dict[str, Any]:
        given = {
            "attempts": self.attempts,
            "kind": kind,
            "run_tag": self.run_tag,
            "store": self.store if kind == "muskie" else self.tourney_store,
            "fulfilments": self.fulfilments,
            "allocation": self.allocation if kind == "muskie" else None,
            **changes,
        }
        return reconcile(**given)

    def accepted(self) -> list[Attempt]:
        return [
            a for a in self.attempts if a.kind == "muskie" and a.outcome == "accepted"
        ]


def real_run(mode: str) -> Run:
    with gzip.open(DATA / f"{mode}-run.json.gz", "rt") as handle:
        data = json.load(handle)
    inputs = data["inputs"]
    store = (
        orders_store(inputs["muskie_store"])
        if mode == "strangler"
        else shop_store(inputs["muskie_store"], "ROD-MUSKIE")
    )
    return Run(
        mode=mode,
        run_tag=inputs["run_tag"],
        attempts=[Attempt(**a) for a in data["attempts"]],
        store=store,
        tourney_store=shop_store(inputs["tourney_store"], "ROD-TOURNEY"),
        fulfilments=copy.deepcopy(inputs["fulfilments"]),
        allocation=int(inputs["allocation"]),
    )


@pytest.fixture
def legacy() -> Run:
    return real_run("legacy")


@pytest.fixture
def strangler() -> Run:
    return real_run("strangler")


def test_the_real_legacy_run_accounts_for_every_order(legacy: Run) -> None:
    # Given the legacy run's records: 300 rods, buyers through the shop
    # When they are reconciled
    result = legacy.reconcile()

    # Then every order the buyers were told about was packed, once, within stock
    assert result["accepted"] == 299
    assert result["fulfilled"] == 299
    assert (result["lost"], result["duplicated"], result["oversold"]) == (0, 0, 0)
    # And the two edge timeouts are refusals, one of which the shop completed anyway:
    # its buyer was told "error" while the rod was sold (the legacy path's flaw)
    assert result["rejected_by_status"] == {"504": 2}
    assert result["unconfirmed"] == 1
    assert result["units_sold"] == legacy.allocation == 300
    assert result["attempted"] == result["accepted"] + result["sold_out"] + 2


def test_the_real_strangler_run_accounts_for_every_order(strangler: Run) -> None:
    result = strangler.reconcile()
    tourney = strangler.reconcile("tourney")

    assert result["accepted"] == result["fulfilled"] == 300
    assert (result["lost"], result["duplicated"], result["oversold"]) == (0, 0, 0)
    assert result["unconfirmed"] == 0
    assert result["units_sold"] == result["units_packed"] == 300
    assert tourney["accepted"] == tourney["fulfilled"] == 35
    assert (tourney["lost"], tourney["duplicated"]) == (0, 0)


def test_an_order_the_warehouse_never_packed_is_lost(strangler: Run) -> None:
    # Given the warehouse's record of one accepted order is missing
    order = next(
        o for o in strangler.store if o.order_id == strangler.accepted()[0].order_id
    )
    fulfilments = [f for f in strangler.fulfilments if f["order_ref"] != order.number]

    # When the run is reconciled
    result = strangler.reconcile(fulfilments=fulfilments)

    # Then that order is lost, and named
    assert result["lost"] == 1
    assert result["fulfilled"] == 299
    assert any(order.number in problem for problem in result["problems"])


def test_an_order_missing_from_the_store_is_lost(legacy: Run) -> None:
    told = legacy.accepted()[10].order_number
    store = [o for o in legacy.store if o.number != told]

    result = legacy.reconcile(store=store)

    assert result["lost"] == 1
    assert any("not in the order store" in p for p in result["problems"])


def test_an_order_that_failed_in_the_open_is_failed_not_lost(strangler: Run) -> None:
    # Given one order dead-lettered: never packed, and the store says `failed`
    order = next(
        o for o in strangler.store if o.order_id == strangler.accepted()[5].order_id
    )
    store = [replace(o, status="failed") if o is order else o for o in strangler.store]
    fulfilments = [f for f in strangler.fulfilments if f["order_ref"] != order.number]

    result = strangler.reconcile(store=store, fulfilments=fulfilments)

    assert (result["failed"], result["lost"], result["fulfilled"]) == (1, 0, 299)


def test_one_attempt_that_made_two_orders_is_a_duplicate(legacy: Run) -> None:
    # Given the shop wrote one attempt's order twice (another number, same buyer)
    twice = legacy.store[3]
    store = [*legacy.store, replace(twice, number=twice.number + "X")]

    result = legacy.reconcile(store=store)

    assert result["duplicated"] == 1
    assert result["oversold"] == 1  # and that second rod was one too many


def test_an_order_packed_twice_is_a_duplicate(strangler: Run) -> None:
    packed = strangler.fulfilments[7]
    fulfilments = [*strangler.fulfilments, dict(packed)]

    result = strangler.reconcile(fulfilments=fulfilments)

    assert result["duplicated"] == 1


def test_two_buyers_told_about_one_order_is_a_duplicate(strangler: Run) -> None:
    first, second = strangler.accepted()[:2]
    attempts = [
        replace(a, order_id=first.order_id) if a is second else a
        for a in strangler.attempts
    ]

    result = strangler.reconcile(attempts=attempts)

    assert result["duplicated"] == 1


def test_selling_past_the_allocation_is_oversold(legacy: Run) -> None:
    result = legacy.reconcile(allocation=legacy.allocation - 3)

    assert result["oversold"] == 3
    assert any(p.startswith("oversold") for p in result["problems"])


def test_orders_of_another_run_or_kind_are_not_this_runs(strangler: Run) -> None:
    # Given the Tourney store reconciled as if it were another run's
    result = strangler.reconcile("tourney", run_tag="someoneelse")

    # Then none of its orders are this run's (so none is unconfirmed), and the
    # buyers' accepted orders are still found and packed
    assert result["unconfirmed"] == 0
    assert result["fulfilled"] == result["accepted"] == 35
