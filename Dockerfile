# cgscope node agent: the statically linked binary, built on the host, in an empty image.
# Build (the context holds only the binary, ~11 MB; see README.md, "Deploying to Kubernetes"):
#   RUSTFLAGS='-C target-feature=+crt-static' \
#     cargo build --profile dist --target x86_64-unknown-linux-gnu --bin cgscope
#   cp target/x86_64-unknown-linux-gnu/dist/cgscope CONTEXT_DIR/
#   DOCKER_BUILDKIT=0 docker build -f Dockerfile --build-arg VERSION=0.1.0 -t cgscope:0.1.0 CONTEXT_DIR
FROM scratch

ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cgscope" \
      org.opencontainers.image.description="Per-node container resource collector: cgroups v1/v2/hybrid to JSON and Prometheus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# World-executable and owned by root: any uid can run it, none can change it.
COPY --chown=0:0 cgscope /cgscope

# nobody:nogroup by default. Reading other processes' network namespaces needs uid 0 with
# CAP_SYS_PTRACE and the runtime sockets need root or their group: daemonset.yaml sets both.
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/cgscope"]
CMD ["serve"]
