"""The edge process, either engine: the Procfile's `edge:` line.

    python -m edge_router.serve ENGINE uvicorn edge_router.app:app --host H --port P
                                       --workers N [uvicorn's other options]

`python` (the default, EDGE_ENGINE unset) becomes the uvicorn command that follows,
as it is (the process is replaced: nothing of this module stays). `nginx` runs the
nginx engine's control plane (edge_router/engine.py) instead: nginx on the same host
and port with N workers, the control plane's admin API on the admin listener
(EDGE_ADMIN_HOST:EDGE_ADMIN_PORT, 127.0.0.1:8010). The uvicorn command stays in the
Procfile either way, so the line says what the Python engine runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

ENGINES = ("python", "nginx")


def _server_options(command: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    options, _ = parser.parse_known_args(command)
    return options


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ENGINES:
        sys.stderr.write(
            f"usage: python -m edge_router.serve {{{','.join(ENGINES)}}} uvicorn ...; "
            f"EDGE_ENGINE must be one of {', '.join(ENGINES)}, got "
            f"{args[0] if args else ''!r}\n"
        )
        return 2
    engine, command = args[0], args[1:]
    if engine == "python":
        binary = shutil.which(command[0]) or command[0]
        os.execv(binary, command)  # noqa: S606 - the Procfile's own uvicorn line
    from edge_router import engine as nginx_engine

    options = _server_options(command)
    return nginx_engine.run(
        listen=f"{options.host}:{options.port}",
        workers=options.workers,
    )


if __name__ == "__main__":
    raise SystemExit(main())
