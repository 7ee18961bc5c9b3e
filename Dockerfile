# syntax=docker/dockerfile:1
# albdrain's image for Docker users: the manager (/albdrain) and the in-pod
# helper (/albdrain-hold) that the webhook's init container copies into pods,
# both static, alone on an empty base, as distroless's nonroot user.
# `make image` builds the same image without Docker (e2e/tools/cmd/image); a test in
# e2e/image checks that both agree.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Cross-compiled on the build platform; CGO off makes both binaries static,
# which the helper must be to run in any application image. The manager
# carries its own fallback CA roots, so the image needs no CA bundle.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/albdrain ./cmd/albdrain-hold

FROM scratch
COPY --from=build /out/albdrain /albdrain
COPY --from=build /out/albdrain-hold /albdrain-hold
USER 65532:65532
ENTRYPOINT ["/albdrain"]
