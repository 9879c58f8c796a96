"""The sale path's CPUs: a bulkhead for the new path on a machine the stack shares.

In production the orders service, its relay and workers run on servers of their own,
so a flash sale cannot take CPU from the legacy shop. On one laptop they share the
cores with the shop, the edge and PostgreSQL, and a sale that saturates the cores
slows every page. `SALE_PATH_CPUS` gives the new path CPUs of its own instead: the
launcher starts the orders service, the outbox relay, the orders worker and the
fulfillment worker under `taskset -c <SALE_PATH_CPUS>` (see the Procfile), and
`sale run` starts its flash-sale buyers there too (their load stands for customers'
own devices). The shop, the edge, the warehouse and PostgreSQL may still use every
CPU.

    SALE_PATH_CPUS unset   the upper half of the CPUs this process may use (CPU 1 of 2)
    SALE_PATH_CPUS=off     no bulkhead: every process may run on every CPU
    SALE_PATH_CPUS=1,3     those CPUs (taskset's list syntax: 0-3, 1,3, 2-3,6)

Linux only (`taskset`, from util-linux); elsewhere, or with one CPU, it is off.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

OFF = frozenset({"off", "none", "no"})


class CpusError(ValueError):
    """SALE_PATH_CPUS names no CPU, or one this machine does not give us."""


def available() -> list[int]:
    """The CPUs this process may run on, in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def supported() -> bool:
    return sys.platform.startswith("linux") and shutil.which("taskset") is not None


def parse(text: str) -> list[int]:
    """taskset's CPU list (`1`, `0-3`, `1,3`, `2-3,6`) as sorted CPU numbers."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise CpusError(
                f"SALE_PATH_CPUS={text!r}: expected CPU numbers like 1, 2-3 or 1,3 "
                "(or off)"
            )
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise CpusError(f"SALE_PATH_CPUS={text!r}: the range {part} runs backwards")
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def sale_path_cpus(env: Mapping[str, str] | None = None) -> str:
    """The CPU list the sale path runs on, for `taskset -c`; "" when it is off."""
    env = os.environ if env is None else env
    raw = env.get("SALE_PATH_CPUS", "").strip().lower()
    if raw in OFF:
        return ""
    # A list that names no CPU is an error everywhere, taskset or not.
    wanted = parse(raw) if raw else []
    if not supported():
        return ""
    mine = available()
    if not raw:
        if len(mine) < 2:
            return ""
        return ",".join(str(cpu) for cpu in mine[len(mine) // 2 :])
    missing = [cpu for cpu in wanted if cpu not in mine]
    if missing:
        raise CpusError(
            f"SALE_PATH_CPUS={raw}: CPU {', '.join(map(str, missing))} is not among "
            f"this machine's ({','.join(map(str, mine))})"
        )
    if len(wanted) == len(mine):
        return ""  # every CPU: no bulkhead to make
    return ",".join(map(str, wanted))


def describe(cpus: str) -> str:
    if not cpus:
        why = "SALE_PATH_CPUS=off" if supported() else "no taskset here"
        return f"shares every CPU with the rest of the stack ({why})"
    return f"runs on CPU {cpus} (SALE_PATH_CPUS; the rest of the stack may use all)"
