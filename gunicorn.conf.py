"""Settings every gunicorn of the stack shares (read from the working directory).

gunicorn loads ./gunicorn.conf.py by itself, so the Procfile, docker compose and the
tests' processes all get these without a flag on each command line.
"""

# W3C trace context lets a caller send a long `tracestate`; uvicorn (h11), which the
# edge runs on, takes a 16 KiB header block. gunicorn's default of 8190 bytes per
# header answered such a request 431 before the app could ignore the header: a
# tracing header must never cost a customer the request (tests/shop/test_traces.py).
limit_request_field_size = 16 * 1024

# The access log's extra atoms: %(iso)s, %(trace_id)s, %(span_id)s (the Procfile's
# --access-logformat writes the stack's one log line format with them).
logger_class = "common.gunicorn_logging.TraceAccessLogger"


def when_ready(server: object) -> None:
    """In the master, once it listens: under docker compose (FAULTS_PROCESS set), it
    takes its own `faults kill` requests (common/fault_kills.py)."""
    from common.fault_kills import kill_watch_from_env

    kill_watch_from_env()
