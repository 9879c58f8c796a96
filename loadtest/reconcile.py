"""Reconciliation: what the buyers were told, against the order store and the warehouse.

For one kind of purchase (Muskie or Tourney) in one mode, after the drain:

- **lost**: an order a buyer was told was accepted that the order store does not have,
  or that the warehouse never fulfilled and that did not fail in the open (the
  strangler's dead-letter path marks an order `failed`; the buyer is told so).
- **duplicated**: one attempt that made two orders in the store, one order two
  attempts were told about, an order number twice in the store, or an order the
  warehouse fulfilled twice.
- **oversold**: units sold (the store) or packed (the warehouse) beyond the allocation.
- **unconfirmed** (reported, not an invariant): an order in the store that its buyer
  was never told about (a timeout or error answered while the order went through).

Orders are tied to attempts by the attempt's own e-mail address (identity.py), by the
order id the 303 named (strangler) and by the order number (legacy, and the
warehouse's order_ref in both modes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.identity import email_parse
from loadtest.journal import Attempt

POSTED = frozenset({"accepted", "sold_out", "rejected"})
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class StoreOrder:
    """An order as its store holds it; `number` is also the warehouse's order_ref."""

    number: str
    order_id: str | None
    email: str
    units: int
    status: str


def shop_store(rows: Iterable[Mapping[str, Any]], sku: str) -> list[StoreOrder]:
    """The shop's orders (GET /internal/orders/) as store orders of one product."""
    return [
        StoreOrder(
            number=str(row["number"]),
            order_id=None,
            email=str(row["email"]),
            units=sum(int(ln["quantity"]) for ln in row["lines"] if ln["sku"] == sku),
            status=str(row["status"]),
        )
        for row in rows
    ]


def orders_store(rows: Iterable[Mapping[str, Any]]) -> list[StoreOrder]:
    """The orders service's sale orders (GET /internal/sales/<slug>/orders/)."""
    return [
        StoreOrder(
            number=str(row["number"]),
            order_id=str(row["id"]),
            email=str(row["email"]),
            units=int(row["quantity"]),
            status=str(row["status"]),
        )
        for row in rows
    ]


def reconcile(
    *,
    attempts: Sequence[Attempt],
    kind: str,
    run_tag: str,
    store: Sequence[StoreOrder],
    fulfilments: Sequence[Mapping[str, Any]],
    allocation: int | None,
) -> dict[str, Any]:
    """The figures of one kind of purchase; see the module's docstring."""
    mine = [a for a in attempts if a.kind == kind]
    accepted = [a for a in mine if a.outcome == "accepted"]
    rejected = [a for a in mine if a.outcome == "rejected"]
    problems: list[str] = []
    by_number = {o.number: o for o in store}
    packed = Counter(str(f["order_ref"]) for f in fulfilments)
    fates, told = _accepted_fates(accepted, store, packed, problems)
    ours = [o for o in store if _of_run(o.email, kind, run_tag)]
    per_attempt = Counter(o.email for o in ours)
    duplicated = (
        sum(n - 1 for n in per_attempt.values() if n > 1)
        + sum(n - 1 for n in told.values() if n > 1)
        + sum(n - 1 for n in Counter(o.number for o in store).values() if n > 1)
        + sum(n - 1 for ref, n in packed.items() if n > 1 and ref in by_number)
    )
    if duplicated:
        problems.append(f"duplicated: {duplicated} (attempts {dict(per_attempt)})")
    accepted_keys = {a.email for a in accepted}
    unconfirmed = [o for o in ours if o.email not in accepted_keys]
    for order in unconfirmed[:5]:
        problems.append(
            f"unconfirmed: {order.number} of {order.email} ({order.status})"
        )
    units = _units(store, fulfilments, allocation, problems)
    return {
        "attempted": sum(1 for a in mine if a.outcome in POSTED),
        "accepted": len(accepted),
        "sold_out": sum(1 for a in mine if a.outcome == "sold_out"),
        "rejected": len(rejected),
        **fates,
        "duplicated": duplicated,
        "oversold": units["oversold"],
        "unconfirmed": len(unconfirmed),
        "sold_out_page": sum(1 for a in mine if a.outcome == "sold_out_page"),
        "page_errors": sum(1 for a in mine if a.outcome == "page_error"),
        "rejected_by_status": dict(Counter(a.reason for a in rejected)),
        "units_sold": units["units_sold"],
        "units_packed": units["units_packed"],
        "allocation": allocation,
        "problems": problems[:MAX_PROBLEMS],
    }


def _accepted_fates(
    accepted: Sequence[Attempt],
    store: Sequence[StoreOrder],
    packed: Counter[str],
    problems: list[str],
) -> tuple[dict[str, int], Counter[str]]:
    """How many accepted orders were fulfilled, failed in the open or lost; and how
    many attempts were told about each order number."""
    by_id = {o.order_id: o for o in store if o.order_id}
    by_number = {o.number: o for o in store}
    fulfilled = failed = lost = 0
    told: Counter[str] = Counter()
    for attempt in accepted:
        order = (
            by_id.get(attempt.order_id)
            if attempt.order_id
            else by_number.get(attempt.order_number or "")
        )
        if order is None:
            lost += 1
            problems.append(f"lost: {_name(attempt)} is not in the order store")
            continue
        told[order.number] += 1
        if order.email != attempt.email:
            problems.append(
                f"{order.number} belongs to {order.email}, not {_name(attempt)}"
            )
        if packed[order.number]:
            fulfilled += 1
        elif order.status == "failed":
            failed += 1
        else:
            lost += 1
            problems.append(f"lost: {order.number} ({order.status}) was never packed")
    return {"fulfilled": fulfilled, "failed": failed, "lost": lost}, told


def _units(
    store: Sequence[StoreOrder],
    fulfilments: Sequence[Mapping[str, Any]],
    allocation: int | None,
    problems: list[str],
) -> dict[str, int]:
    """Units sold (the store) and packed (the warehouse), and how far either went
    past the allocation."""
    packed_units = {str(f["order_ref"]): int(f["units"]) for f in fulfilments}
    units_sold = sum(o.units for o in store)
    units_packed = sum(packed_units.get(o.number, 0) for o in store)
    oversold = 0
    if allocation is not None:
        oversold = max(0, units_sold - allocation, units_packed - allocation)
        if oversold:
            problems.append(
                f"oversold: {units_sold} sold, {units_packed} packed, "
                f"allocation {allocation}"
            )
    return {
        "units_sold": units_sold,
        "units_packed": units_packed,
        "oversold": oversold,
    }


def _of_run(email: str, kind: str, run_tag: str) -> bool:
    parsed = email_parse(email)
    return parsed is not None and parsed[0] == kind[0] and parsed[3] == run_tag


def _name(attempt: Attempt) -> str:
    return f"{attempt.email} ({attempt.order_number or attempt.order_id})"
