# kgate container image: build with the pinned toolchain, run as a non-root user from a
# minimal image. CI replays the build command (`cargo build --release --locked -p kgate`)
# because no Docker engine runs on the build machines.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kgate \
 && install -D -m 0755 target/release/kgate /out/kgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kgate /usr/local/bin/kgate
USER nonroot:nonroot
# In a cluster kgate uses the pod's service account; listen on all interfaces and accept the
# Service's host names explicitly, e.g.:
#   kgate serve --address=0.0.0.0 --accept-hosts='^kgate\.tools\.svc$'
EXPOSE 8001
ENTRYPOINT ["/usr/local/bin/kgate"]
CMD ["serve", "--address=0.0.0.0"]
