# antifit image: the same setup script as README and CI, run as root at build time (it installs
# WordNet and Apertium from Debian), then everything runs as an unprivileged user.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ANTIFIT_CACHE=/var/cache/antifit \
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
    && mkdir -p /var/cache/antifit /data \
    && scripts/setup.sh --venv /opt/venv \
    && chown -R antifit /var/cache/antifit /data

USER antifit
VOLUME ["/data"]
ENTRYPOINT ["antifit"]
CMD ["resources", "--prepare"]
