"""Many buyers at once against a running orders service (aiohttp, one event loop)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


async def _flood(
    url: str, bodies: list[dict[str, Any]], keys: list[str]
) -> list[Answer]:
    connector = aiohttp.TCPConnector(limit=len(bodies), force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: dict[str, Any], key: str) -> Answer:
            async with session.post(
                url + "/api/orders/", json=body, headers={"Idempotency-Key": key}
            ) as response:
                return Answer(response.status, await response.json())

        return list(
            await asyncio.gather(
                *(one(b, k) for b, k in zip(bodies, keys, strict=True))
            )
        )


def buyers(
    url: str, count: int, *, quantity: int = 1, same_key: bool = False
) -> list[Answer]:
    """`count` buyers POST at the same moment; their answers, in order."""
    shared = str(uuid.uuid4())
    keys = [shared if same_key else str(uuid.uuid4()) for _ in range(count)]
    body = {"sku": "ROD-MUSKIE", "quantity": quantity, "email": "buyer@example.com"}
    return asyncio.run(_flood(url, [body] * count, keys))
