# syntax=docker/dockerfile:1
# webops-mcp: multi-stage build, small non-root runtime image.
#
#   docker build -t webops-mcp .
#   docker run --rm -p 127.0.0.1:8080:8080 webops-mcp http --demo --bind 0.0.0.0:8080
#
# Without arguments the image runs CMD below, which reads /etc/webops-mcp/config.toml (mount
# it); arguments after the image name replace CMD, so the demo needs no file. See
# docs/deployment.md for a production run (configuration file, secrets, audit volume).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep the registry and the build between image builds; the binary is copied out
# of the cache mount because the mount does not outlive the RUN step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p webops-mcp-server --bin webops-mcp \
    && install -D -m 0755 target/release/webops-mcp /out/webops-mcp \
    && install -d -m 0700 /out/state

# distroless "cc": glibc and libgcc only, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/webops-mcp /usr/local/bin/webops-mcp
# Writable place for the audit log ([security] audit_log = "/var/lib/webops-mcp/audit.jsonl").
COPY --from=build --chown=65532:65532 /out/state /var/lib/webops-mcp
USER 65532:65532
EXPOSE 8080
# No HEALTHCHECK: the image has no shell or curl. Probe GET /health from the orchestrator
# (e.g. a Kubernetes httpGet probe); it answers 200 with "ok" or "degraded".
ENTRYPOINT ["/usr/local/bin/webops-mcp"]
# The configuration is named here, not in WEBOPS_MCP_CONFIG: an environment variable would
# also apply to commands given on `docker run` (such as the demo) and fail them without the file.
CMD ["http", "--config", "/etc/webops-mcp/config.toml", "--bind", "0.0.0.0:8080"]
