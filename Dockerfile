# weir's image: one static binary on a distroless base, run as a non-root user.
#
#   docker build -t weir:dev .
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t weir:dev .
#
# deploy/weir/deployment.yaml runs it as `weir serve --in-cluster ...`.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/weir ./cmd/weir

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/weir /weir
USER 65532:65532
EXPOSE 18000 18001
ENTRYPOINT ["/weir"]
