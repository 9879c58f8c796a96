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
    envelope: dict[str, Any]


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
    return [str(m.envelope["data"]["order_number"]) for m in messages]
