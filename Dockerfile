# One image for every Python process of the stack; docker-compose.yml picks the command.
#   docker build -t strangler-fishing-shop .
#   docker run --rm -p 127.0.0.1:8001:8001 -e DATABASE_URL=... -e REDIS_URL=... \
#       strangler-fishing-shop                      # the shop (the default command)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BIND_HOST=0.0.0.0

# Debian's nginx-light: the edge's nginx engine (EDGE_ENGINE=nginx) runs it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system app \
    && useradd --system --gid app --create-home --home-dir /home/app app

WORKDIR /app

# Dependencies first, so a code change does not reinstall them: the runtime group only,
# every package pinned with its hashes (requirements/runtime.txt, from `make lock`).
# The embedded servers, load test and dev tools are other groups: containers use the
# postgres and redis services.
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --require-hashes -r requirements/runtime.txt

COPY --chown=app:app . .
# .data is the launcher's scratch space; the app user must own it.
RUN mkdir -p .data && chown app:app .data

USER app
EXPOSE 8000 8001 8002 8003

# The shop's Procfile line; docker-compose.yml sets the command of every other service.
CMD ["sh", "-c", "exec gunicorn shop.wsgi --bind ${BIND_HOST:-127.0.0.1}:${SHOP_PORT:-8001} --no-control-socket --worker-class gthread --workers ${SHOP_WORKERS:-2} --threads ${SHOP_THREADS:-8} --access-logfile - --access-logformat '%(h)s \"%(r)s\" %(s)s %(b)s %(M)sms'"]
