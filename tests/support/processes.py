"""Real processes for tests: the process harness of common/, under the names the
tests use. Tests cross process boundaries where the behaviour does (shop → warehouse
over HTTP); these start the real thing, never a mock.
"""

from __future__ import annotations

from common.harness.databases import (
    database_drop,
    database_recreate,
    database_url,
    scoped,
)
from common.harness.processes import Process, free_port
from common.harness.procfile import ROOT
from common.harness.services import manage, traces_quiet_env

# A server on a port (RunningService) and a worker started and stopped by a test
# (BackgroundProcess) are one kind of process now: the names say what a test holds.
RunningService = Process
BackgroundProcess = Process

__all__ = [
    "ROOT",
    "BackgroundProcess",
    "RunningService",
    "database_drop",
    "database_recreate",
    "database_url",
    "free_port",
    "manage",
    "scoped",
    "traces_quiet_env",
]
