"""`manage.py fulfillment dlq list|replay`: what an operator sees and does.

A replay asks the real orders service for each order's units first (a failed order
gave them back to its sale): an order whose units are gone is skipped and stays a
dead letter; an orders service that does not answer stops the replay.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from fulfillment_queue import services
from fulfillment_queue.models import DeadLetter
from tests.fulfillment_queue.conftest import (
    Recorder,
    accepted_event,
    order_known,
    queued,
)
from tests.support.processes import RunningService, free_port

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("fulfillment", *args, stdout=out)
    return out.getvalue()


def park(number: str) -> DeadLetter:
    return services.dead_letter_record(
        raw=accepted_event(number), reason="warehouse answered 503", attempts=9,
        publish=Recorder(),
    )  # fmt: skip


def test_list_shows_open_dead_letters() -> None:
    assert run("dlq", "list").strip() == "no dead letters"
    park("MU-AAAA")

    listing = run("dlq", "list")

    assert "MU-AAAA" in listing
    assert "9 tries" in listing
    assert "warehouse answered 503" in listing


def test_replay_one_by_id_puts_it_on_the_queue(
    queues: dict[str, str], to_orders: RunningService
) -> None:
    number = order_known()
    letter = park(number)
    park(order_known())

    output = run("dlq", "replay", str(letter.pk))

    assert f"replayed {letter.pk} ({number})" in output
    assert queued(queues["fulfillment"]) == 1
    assert number not in run("dlq", "list")
    assert number in run("dlq", "list", "--all")


def test_replay_all(queues: dict[str, str], to_orders: RunningService) -> None:
    park(order_known())
    park(order_known())

    assert "2 dead letters sent" in run("dlq", "replay", "--all")
    assert queued(queues["fulfillment"]) == 2


def test_replay_skips_an_order_whose_units_are_gone_and_leaves_it_open(
    queues: dict[str, str], to_orders: RunningService
) -> None:
    # Given a failed order whose unit went back to a sale that has closed since,
    # and an order the orders service has never heard of
    gone = park(order_known(failed_in_closed_sale=True))
    unknown = park("MU-NEVERHEARD")
    shipping = park(order_known())

    # When every dead letter is replayed
    output = run("dlq", "replay", "--all")

    # Then only the order that may ship is sent; the others stay open, with why
    assert queued(queues["fulfillment"]) == 1
    assert (
        f"skipped {gone.pk} ({gone.order_ref}): units gone: the sale is no longer open"
        in output
    )
    assert f"skipped {unknown.pk} (MU-NEVERHEARD): unknown to the orders" in output
    assert f"replayed {shipping.pk}" in output
    assert "1 dead letters sent to the queue again, 2 skipped" in output
    still_open = DeadLetter.objects.filter(replayed_at__isnull=True)
    assert set(still_open.values_list("pk", flat=True)) == {gone.pk, unknown.pk}


def test_an_orders_service_that_does_not_answer_stops_the_replay(
    queues: dict[str, str], settings: Any, to_orders: RunningService
) -> None:
    # Given a dead letter, and the orders service nowhere to be found
    letter = park(order_known())
    settings.ORDERS_URL = f"http://127.0.0.1:{free_port()}"

    # When it is replayed, then the command fails and says why; nothing is sent
    with pytest.raises(CommandError, match="did not answer") as failure:
        run("dlq", "replay", "--all")
    assert f"stopped at dead letter {letter.pk}" in str(failure.value)
    assert queued(queues["fulfillment"]) == 0
    assert DeadLetter.objects.filter(replayed_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    "args",
    [("dlq", "replay"), ("dlq", "replay", "999999"), ("dlq", "replay", "1", "--all")],
)
def test_replay_with_bad_arguments_fails_and_sends_nothing(
    queues: dict[str, str], args: tuple[str, ...]
) -> None:
    park("MU-FFFF")

    with pytest.raises(CommandError):
        run(*args)
    assert queued(queues["fulfillment"]) == 0
    assert DeadLetter.objects.filter(replayed_at__isnull=True).count() == 1
