# antifit image: the same setup script as README and CI, run as root at build time (it installs
# WordNet and Apertium from Debian), then the service runs as an unprivileged user.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ANTIFIT_CACHE=/var/cache/antifit \
    ANTIFIT_DATA_DIR=/data \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml README.md ./
COPY antifit ./antifit
COPY augmenters ./augmenters
COPY app ./app
COPY trainer ./trainer
COPY scripts ./scripts
COPY examples ./examples

RUN useradd --create-home --uid 1000 antifit \
    && mkdir -p /var/cache/antifit /data /runs \
    && scripts/setup.sh --venv /opt/venv \
    && chown -R antifit /var/cache/antifit /data /runs

USER antifit
VOLUME ["/data", "/runs"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["antifit"]
# it listens on every address of the container, so it starts only with ANTIFIT_API_KEYS (or
# ANTIFIT_ALLOW_ANONYMOUS=true): see .env.example and docs/security.md
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
