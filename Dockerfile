# antifit image: the same setup script as README and CI, run as root at build time (it installs
# WordNet and Apertium from Debian), then the service runs as an unprivileged user.
#
# torch: the CPU build by default (an image of ~2.5 GB). For GPU hosts, the CUDA build from PyPI
# (~6.5 GB):
#   docker build --build-arg TORCH=torch==2.13.0 --build-arg TORCH_INDEX_URL=https://pypi.org/simple .
# EXTRAS: optional extras baked in ("ray" for ANTIFIT_EXECUTOR=ray and the compose ray profile).
FROM python:3.11-slim-bookworm

ARG TORCH=torch==2.13.0+cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=ray
# where pip may also look for wheels at build time (a local wheelhouse, say, and its host if
# it is served over plain HTTP); empty: nowhere
ARG PIP_FIND_LINKS=
ARG PIP_TRUSTED_HOST=

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ANTIFIT_CACHE=/var/cache/antifit \
    ANTIFIT_DATA_DIR=/data \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
RUN useradd --create-home --uid 1000 antifit \
    && mkdir -p /var/cache/antifit /data /runs

# 1. Debian packages, torch and the dependencies: from pyproject.toml alone, so editing the
#    sources does not reinstall them
COPY pyproject.toml README.md ./
COPY scripts/setup.sh scripts/
RUN ANTIFIT_TORCH="$TORCH" ANTIFIT_TORCH_INDEX_URL="$TORCH_INDEX_URL" \
        PIP_FIND_LINKS="$PIP_FIND_LINKS" PIP_TRUSTED_HOST="$PIP_TRUSTED_HOST" \
        scripts/setup.sh --venv /opt/venv --extras "$EXTRAS" --deps-only \
    && rm -rf /var/lib/apt/lists/* /root/.cache

# 2. the project itself, and its offline resources checked
COPY antifit ./antifit
COPY augmenters ./augmenters
COPY app ./app
COPY trainer ./trainer
COPY scripts ./scripts
COPY examples ./examples
RUN PIP_FIND_LINKS="$PIP_FIND_LINKS" PIP_TRUSTED_HOST="$PIP_TRUSTED_HOST" scripts/setup.sh --venv /opt/venv --extras "$EXTRAS" \
    && rm -rf /var/lib/apt/lists/* /root/.cache \
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
