# syntax=docker/dockerfile:1
#
# IntelliAuth control plane: one static binary with the production
# subcommands (api, worker, migrate, setup, bootstrap, healthcheck, version).
#
#   docker build --build-arg VERSION=1.4.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     -t intelliauth/controlplane:1.4.0 .
#   docker run --rm -e CP_DATABASE_URL=... intelliauth/controlplane migrate up
#
# BuildKit is required (cache mounts); it is the default builder of current
# Docker. The Go image is pinned to the Go that go.mod asks for (1.26.8);
# GOTOOLCHAIN=local below makes a mismatch a clear error instead of a
# toolchain download. The binary is built with -tags nodev: `dev`, with its
# embedded Temporal server and UI (about 150 MB), is for laptops, not images.

############################
# Build
############################
FROM golang:1.26.8-bookworm AS build

# local: build with the image's Go, never fetch another toolchain.
# CGO_ENABLED=0: a static binary for the distroless/static runtime (every
# dependency is pure Go, the embedded Temporal's SQLite included).
ENV GOTOOLCHAIN=local \
    CGO_ENABLED=0

WORKDIR /src

# What the binary (`controlplane version`, controlplane_build_info) and the
# image's labels say it is. The build context has no .git, so the revision
# comes from here; without it the binary says "dev" and no revision.
ARG VERSION=dev
ARG REVISION=

# Dependencies first, in their own layer: it is rebuilt only when go.mod or
# go.sum change. The official golang image sets GOPATH=/go, so the module
# cache is /go/pkg/mod (not /root/go/pkg/mod) and the build cache is
# /root/.cache/go-build; the build step mounts the same caches, so modules
# evicted from the cache mount are fetched again there rather than missed.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download

# schema/migrations/*.sql are embedded into the binary, so schema/ must be in
# the context (see .dockerignore).
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -tags nodev -trimpath \
      -ldflags="-s -w -X github.com/intelliauth/controlplane/internal/telemetry.Version=${VERSION} -X github.com/intelliauth/controlplane/internal/telemetry.Revision=${REVISION}" \
      -o /out/controlplane ./cmd/controlplane

############################
# Runtime
############################
# static: no libc needed (CGO_ENABLED=0); :nonroot runs as uid/gid 65532 and
# has an /etc/passwd entry for it (bootstrap records the OS user as actor).
FROM gcr.io/distroless/static-debian12:nonroot

# Build arguments end with their stage; the labels need them again.
ARG VERSION=dev
ARG REVISION=
# The licence is stated by whoever builds the image; NOASSERTION is SPDX's
# "not stated".
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="IntelliAuth control plane" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/intelliauth/controlplane" \
      org.opencontainers.image.licenses="${LICENSES}"

COPY --from=build /out/controlplane /usr/local/bin/controlplane

USER nonroot:nonroot

# The API's port when CP_HTTP_ADDR=0.0.0.0:8080. The binary's own default is
# 127.0.0.1:8080, which is unreachable from outside a container, so set
# CP_HTTP_ADDR when running `api` (docker-compose.yml does).
EXPOSE 8080

# The image has no shell or HTTP client: the binary probes /healthz on its
# own metrics listener (CP_METRICS_ADDR) of a running api or worker. The
# one-shots (migrate, setup, bootstrap) serve none; compose turns the check
# off for them.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/controlplane", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/controlplane"]
CMD ["api"]
