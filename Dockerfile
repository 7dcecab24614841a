# Cross-Entropy Explainer: the app and its shipped weights in a slim image.
# CPU torch by default; for CUDA:  docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .

# Stage 1: the project's wheel (templates/, static/ and the weights inside; see pyproject.toml).
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
COPY templates ./templates
COPY static ./static
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# Stage 2: torch, then the wheel installed like any package; no source tree in the image.
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1 \
    APP_LOG_JSON=1

WORKDIR /srv

# The same two installs as `make run`: torch first (the build you chose), then the project.
# TORCH_SPEC carries its pin (torch==2.13.0); hadolint cannot see through the variable.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"
RUN --mount=type=bind,from=wheel,source=/dist,target=/dist \
    pip install --no-cache-dir /dist/*.whl \
    && useradd --system --uid 10001 --no-create-home app

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=4)"]

# Workers: set WEB_CONCURRENCY (uvicorn reads it); weights: the ones baked in under app/weights/, or APP_WEIGHTS.
CMD ["python", "-m", "app"]
