"""gunicorn's access log with the request's trace (`logger_class` in gunicorn.conf.py).

Three more atoms for `--access-logformat`: `%(iso)s` (UTC, milliseconds, as every
other log line of the stack writes its time), `%(trace_id)s` and `%(span_id)s` (the
request's server span, kept in the WSGI environ by common.middleware.TraceIdMiddleware
while it was current; `-` for a request outside any trace). The Procfile's shop and
warehouse lines write them in the stack's one format (common/tracing/logs.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from common.tracing.logs import ENVIRON_SPAN_ID, ENVIRON_TRACE_ID, NO_ID, iso_now


class TraceAccessLogger(Logger):
    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["iso"] = iso_now()
        atoms["trace_id"] = environ.get(ENVIRON_TRACE_ID, NO_ID)
        atoms["span_id"] = environ.get(ENVIRON_SPAN_ID, NO_ID)
        return atoms
