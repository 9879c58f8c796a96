"""What every service shares: env parsing, settings, the API kit, tracing, the harness.

Every service imports this package before it starts a thread, so it settles one thing
for all of them: the `idna` codec. `socket.getaddrinfo` encodes a host name with it,
and the first use imports `encodings.idna`; threads resolving names at once (gunicorn's
gthread workers, Celery's thread pool, asyncio's resolver) can race that import and
leave the codec unknown for the whole life of the process (`LookupError: unknown
encoding: idna`, CPython bpo-29288). Under docker compose, where every backing
service is a host name, a warehouse so broken failed every healthcheck: no stack.
"""

"".encode("idna")
