# lighthouse-fs: build the release binary, run it on a slim Debian with fuse3.
#
#   docker build -t lighthouse-fs .
#   docker run --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined \
#              -v lighthouse-store:/var/lib/lighthouse-fs lighthouse-fs
#
# The build stage runs the same commands as CI (.ci/run): the pinned toolchain from
# rust-toolchain.toml, its wasm32-wasip2 target, `cargo build --release --locked`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml ./
RUN rustup show active-toolchain && rustup target add wasm32-wasip2
COPY . .
RUN cargo build --release --locked --bin lighthouse-fs

FROM debian:bookworm-slim
# fuse3: fusermount3, through which the fuse3 backend mounts. tini: PID 1 (below).
# curl: the HTTP client of the docker-compose.yml healthcheck (GET /healthz on
# --metrics); bookworm-slim ships none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse3 ca-certificates tini curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lighthouse-fs /usr/local/bin/lighthouse-fs
# RUST_LOG: the binary's own default (our notices; of fuser only errors, since it warns
# at every mount about the operations it leaves to the kernel's ENOSYS fallback).
ENV LIGHTHOUSE_STORE=/var/lib/lighthouse-fs/store \
    LIGHTHOUSE_FUSE_BACKEND=fuser \
    RUST_LOG=info,fuser=error,fuse3=warn
VOLUME ["/var/lib/lighthouse-fs"]
RUN mkdir -p /mnt/lighthouse
# tini forwards SIGTERM so the mount is unmounted cleanly on `docker stop`.
ENTRYPOINT ["/usr/bin/tini", "--", "lighthouse-fs", "mount", "/mnt/lighthouse"]
