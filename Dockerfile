# One image for every Python process of the stack; docker-compose.yml picks the command.
#   docker build -t strangler-fishing-shop:dev .
#   docker run --rm -p 127.0.0.1:8001:8001 -e DATABASE_URL=... -e REDIS_URL=... \
#       strangler-fishing-shop:dev                  # the shop (the default command)
#
# BuildKit builds it (the default builder since Docker 23; `DOCKER_BUILDKIT=1` before):
# the install step mounts an optional build secret. Two build inputs, both optional:
#   --build-arg BASE_IMAGE=...   any image with python3 (3.11+) and its venv module;
#       the official slim image is the default. tests/compose/ builds on a Debian
#       image made locally with debootstrap where no image registry is reachable.
#   --secret id=pip_ca,src=/path/to/ca-bundle.crt   the CA bundle pip trusts, for a
#       network whose HTTPS goes through an intercepting proxy. A secret is never
#       stored in a layer; without it pip uses its own bundle.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BIND_HOST=0.0.0.0 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Debian's nginx-light for the edge's nginx engine (EDGE_ENGINE=nginx), when
# --build-arg EDGE_NGINX=1 (compose: EDGE_NGINX=1 in .env): it needs a Debian mirror.
ARG EDGE_NGINX=""
RUN if [ -n "$EDGE_NGINX" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends nginx-light \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# No home directory and no login shell: the processes write only to /app/.data and /tmp.
RUN groupadd --system app \
    && useradd --system --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, so a code change does not reinstall them: the runtime group only,
# every package pinned with its hashes (requirements/runtime.txt, from `make lock`).
# The embedded servers, load test and dev tools are other groups: containers use the
# postgres and redis services. A virtualenv, because a distribution's own Python
# (Debian's, for one) refuses `pip install` into itself (PEP 668).
COPY requirements/runtime.txt requirements/runtime.txt
RUN --mount=type=secret,id=pip_ca \
    python3 -m venv "$VIRTUAL_ENV" \
    && if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && pip install --require-hashes -r requirements/runtime.txt

# The code stays root's (the app user can read it, not change it); .data is the one
# directory it writes (the launcher's scratch space; .data/sites holds the sale's static
# minisite, where compose mounts a volume, which takes this owner). .dockerignore keeps
# the tests, the docs and the tooling run from the host (bench, loadtest) out.
COPY . .
RUN mkdir -p .data/sites && chown -R app:app .data && chmod 0750 .data

USER app
EXPOSE 8000 8001 8002 8003

# The shop's Procfile line; docker-compose.yml sets the command of every other service.
CMD ["sh", "-c", "exec gunicorn shop.wsgi --bind ${BIND_HOST:-127.0.0.1}:${SHOP_PORT:-8001} --no-control-socket --worker-class gthread --workers ${SHOP_WORKERS:-2} --threads ${SHOP_THREADS:-8} --access-logfile - --access-logformat '%(h)s \"%(r)s\" %(s)s %(b)s %(M)sms'"]
