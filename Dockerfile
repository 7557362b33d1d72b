# syntax=docker/dockerfile:1
# The image deploy/gitmoor.yaml runs (ghcr.io/gitmoor/gitmoor:<version>):
#   docker build -t ghcr.io/gitmoor/gitmoor:0.1.0 .
# Nothing in this repository's tests builds it: they run where there is no Docker daemon,
# and against the sandbox, whose simulator runs no images.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A wheel first, so the final image holds the installed package and none of the sources.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# git: kustomize clones remote bases with it. openssl: a GitRepository's ca.crt is checked
# with it. ca-certificates: HTTPS hosts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
# A numeric user, so that the kubelet can check the Deployment's runAsNonRoot against it
# (deploy.USER_ID).
RUN groupadd --system --gid 65532 gitmoor \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home gitmoor
USER 65532:65532
ENV PYTHONUNBUFFERED=1 \
    GITMOOR_CACHE_DIR=/tmp/cache
ENTRYPOINT ["gitmoor"]
CMD ["controllers"]
