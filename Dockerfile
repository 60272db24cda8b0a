# The registry image: the `registry` CLI and its HTTP API (see docs/deploy.md).
#   docker build -t dataset-ledger .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REGISTRY_HOME=/registry

WORKDIR /src
COPY pyproject.toml README.md ./
COPY registry ./registry
COPY migrations ./migrations
COPY clients/python/registry_client ./clients/python/registry_client
# Extras to install: postgres (the psycopg driver for a PostgreSQL catalog); add lakefs for a lakeFS
# store (--build-arg REGISTRY_EXTRAS=postgres,lakefs). S3-compatible stores need no extra.
ARG REGISTRY_EXTRAS=postgres
RUN pip install ".[${REGISTRY_EXTRAS}]"

# The home (registry.json, caches; the objects too when REGISTRY_STORAGE_URL is a file:// URL) is a volume.
RUN useradd --create-home --uid 10001 registry && mkdir -p /registry && chown registry /registry
USER registry
WORKDIR /registry
VOLUME ["/registry"]

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["registry", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
