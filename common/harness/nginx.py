"""Debian's nginx with a config of the caller's, its prefix (pid file) in a temp dir:
the edge's export tests and the edge benchmark run it beside the edge."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.harness.processes import Process


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


@contextmanager
def nginx_process(name: str, config_text: str, port: int) -> Iterator[Process]:
    """nginx running `config_text` (checked with `nginx -t` first), answering on
    `port`, until the block ends."""
    binary = nginx_binary()
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed: `make edge-tools` installs it")
    prefix = Path(tempfile.mkdtemp(prefix=f"{name}-nginx-"))
    (prefix / "nginx.conf").write_text(config_text)
    cmd = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    check = subprocess.run(  # noqa: S603 - nginx, our config
        [*cmd, "-t"], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused the config of {name}:\n{check.stderr}")
    try:
        ready = f"http://127.0.0.1:{port}/"
        with Process(
            name, [*cmd, "-g", "daemon off;"], port=port, ready_url=ready
        ) as process:
            yield process
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
