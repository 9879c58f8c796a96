"""A Docker engine for tests/compose/: started if none runs, images made locally.

Where no image registry is reachable the base image is Debian made by debootstrap,
imported once and kept by the engine (the cache between runs); PostgreSQL, Redis and
the OTLP receiver that stands in for Jaeger are built on it (tests/compose/images/).
The project's image is built by the Dockerfile with that base (BASE_IMAGE) and, for
pip, the machine's CA bundle as a build secret. Compose is Debian's docker-compose
(1.29, Python): it runs docker-compose.yml unchanged; Compose v2 is not packaged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BASE_IMAGE = "strangler-base:bookworm"
POSTGRES_IMAGE = "strangler-test-postgres:15"
REDIS_IMAGE = "strangler-test-redis:7"
OTLP_SINK_IMAGE = "strangler-test-otlp-sink:dev"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"
# The CA bundle pip trusts on this machine (`pip config list`: global.cert).
CA_BUNDLE = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
DOCKERD_ARGS = ("--bridge=none", "--iptables=false", "--ip6tables=false")


class EngineUnavailable(Exception):
    """No engine runs and none can be started here (the reason says why)."""


def docker_cli() -> str:
    # Debian's client matches Debian's engine and builds with BuildKit by itself
    # (a newer client wants the buildx plugin for that).
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise EngineUnavailable("no docker client (apt-get install docker.io)")


def docker(
    *args: str,
    timeout: float = 120,
    stdin: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    result = subprocess.run(
        [docker_cli(), *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        stdin=stdin,
        env=env,
    )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        raise RuntimeError(f"docker {' '.join(args)}: {stderr[-3000:]}")
    return result.stdout.decode()


def engine_answers() -> bool:
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except (RuntimeError, EngineUnavailable, subprocess.TimeoutExpired):
        return False
    return True


@dataclass
class Engine:
    """The engine the test uses; `started` when this test started it (and stops it)."""

    started: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def stop(self) -> None:
        if self.started is not None:
            self.started.terminate()
            self.started.wait(timeout=60)


def engine_start() -> Engine:
    """The running engine, else one started as root (host networking only)."""
    docker_cli()
    if engine_answers():
        return Engine()
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        raise EngineUnavailable("no Docker engine (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise EngineUnavailable("no engine runs and only root can start dockerd")
    log = Path(tempfile.gettempdir()) / "strangler-compose-dockerd.log"
    process = subprocess.Popen(
        [dockerd, *DOCKERD_ARGS],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not engine_answers():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise EngineUnavailable(f"dockerd did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return Engine(started=process, log=log)


def image_exists(name: str) -> bool:
    try:
        docker("image", "inspect", name, timeout=30)
    except RuntimeError:
        return False
    return True


def base_image_ensure() -> bool:
    """Debian bookworm with Python, made by debootstrap unless the engine has it.
    True when it had to be made (a cold run)."""
    if image_exists(BASE_IMAGE):
        return False
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise EngineUnavailable("no debootstrap to make the base image (apt-get)")
    with tempfile.TemporaryDirectory(prefix="strangler-rootfs-") as rootfs:
        subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={DEBOOTSTRAP_PACKAGES}",
                "bookworm",
                rootfs,
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        tar = subprocess.Popen(
            ["tar", "-C", rootfs, "-c", "."],
            stdout=subprocess.PIPE,
        )
        docker(
            "import",
            "--change",
            "ENV LANG=C.UTF-8",
            "-",
            BASE_IMAGE,
            stdin=tar.stdout,
            timeout=600,
        )
        tar.wait()
    return True


def image_build(tag: str, context: Path, **build_args: str) -> None:
    """`docker build` with BuildKit on the host's network, pip's CA as a secret."""
    args = ["build", "--quiet", "--network", "host", "--tag", tag]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    if Path(CA_BUNDLE).is_file():
        args += ["--secret", f"id=pip_ca,src={CA_BUNDLE}"]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    docker(*args, str(context), timeout=1200, env=env)


def images_build(app_image: str) -> None:
    """The backing services' images (kept once made) and the project's (rebuilt:
    the layer cache keeps it quick when only the code changed)."""
    for tag, directory in ((POSTGRES_IMAGE, "postgres"), (REDIS_IMAGE, "redis")):
        if not image_exists(tag):
            image_build(tag, HERE / "images" / directory, BASE_IMAGE=BASE_IMAGE)
    image_build(app_image, ROOT, BASE_IMAGE=BASE_IMAGE)
    image_build(OTLP_SINK_IMAGE, HERE / "images" / "otlp-sink", APP_IMAGE=app_image)
