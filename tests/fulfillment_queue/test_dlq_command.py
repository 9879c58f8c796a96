"""`manage.py fulfillment dlq list|replay`: what an operator sees and does."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from fulfillment_queue import services
from fulfillment_queue.models import DeadLetter
from tests.fulfillment_queue.conftest import Recorder, accepted_event, queued

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


def test_replay_one_by_id_puts_it_on_the_queue(queues: dict[str, str]) -> None:
    letter = park("MU-BBBB")
    park("MU-CCCC")

    output = run("dlq", "replay", str(letter.pk))

    assert "replayed" in output
    assert queued(queues["fulfillment"]) == 1
    assert "MU-BBBB" not in run("dlq", "list")
    assert "MU-BBBB" in run("dlq", "list", "--all")


def test_replay_all(queues: dict[str, str]) -> None:
    park("MU-DDDD")
    park("MU-EEEE")

    assert "2 dead letters sent" in run("dlq", "replay", "--all")
    assert queued(queues["fulfillment"]) == 2


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
