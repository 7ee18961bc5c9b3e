# syntax=docker/dockerfile:1
# albdrain's image: the manager (/albdrain) and the in-pod helper
# (/albdrain-hold) that the webhook's init container copies into pods, both
# static, on distroless as its nonroot user.

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
# which the helper must be to run in any application image.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/albdrain ./cmd/albdrain-hold

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/albdrain /albdrain
COPY --from=build /out/albdrain-hold /albdrain-hold
USER 65532:65532
ENTRYPOINT ["/albdrain"]
