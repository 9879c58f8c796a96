"""What really waits on the broker: the Celery messages in a queue's Redis list.

Celery's Redis transport keeps a queue as a list named after it, one JSON message
per item (newest first), the task's arguments base64-encoded in its body. Tests read
it there instead of recording what a publisher was handed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class Message:
    task: str
    # One envelope, or a batch of them (a list: common/events.py).
    envelope: Any

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return self.envelope if isinstance(self.envelope, list) else [self.envelope]


def queue_messages(redis_url: str, queue: str) -> list[Message]:
    """The messages waiting in `queue`, oldest first."""
    raw = redis.Redis.from_url(redis_url).lrange(queue, 0, -1)
    messages = []
    for item in reversed(raw):
        message = json.loads(item)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append(Message(message["headers"]["task"], args[0]))
    return messages


def order_numbers(messages: list[Message]) -> list[str]:
    return [str(e["data"]["order_number"]) for m in messages for e in m.envelopes]
