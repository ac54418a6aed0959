# syntax=docker/dockerfile:1
# The switchboard server image: `docker build -t switchboard .` then
# `docker run -p 8080:8080 switchboard` serves the web app and the signaling API on port 8080.
# Settings are the binary's SWITCHBOARD_* environment variables (docs/operations.md); deployment
# notes, volumes and upgrades are in docs/deploy.md.
#
# Without a registry (CI here) scripts/container-base makes local images under these base names.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# tikv-jemalloc-sys runs jemalloc's configure and make; the slim image has gcc but no make.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# BUILD_JOBS (optional): cargo's --jobs, for machines where the build must leave cores free.
ARG BUILD_JOBS
# The registry and target caches outlive the build, so a rebuild after a change recompiles only
# what changed; the binary is copied out because a cache mount is not part of the image.
# Without the release profile's line tables (debug = 1, kept for profiling on a workstation): they
# are 87 MB of a 103 MB binary; panics and backtraces still name the functions.
ENV CARGO_PROFILE_RELEASE_DEBUG=0
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p switchboard ${BUILD_JOBS:+--jobs "$BUILD_JOBS"} \
 && cp target/release/switchboard /usr/local/bin/switchboard

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="WebRTC signaling server with a browser SDK and a video-call app" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# A fixed numeric id, so `runAsNonRoot` checks and volume ownership do not depend on a name.
RUN groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/switchboard --shell /usr/sbin/nologin switchboard \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/switchboard
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard
# Listen on every interface (the binary's default is loopback only). data_dir holds only the
# development secret generated when SWITCHBOARD_SECRET is unset; it is a volume so that tokens
# minted with that secret survive a restart. In production set SWITCHBOARD_SECRET.
# NO_COLOR: text logs without terminal colour codes (a container's log is a file, not a terminal).
ENV SWITCHBOARD_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_DATA_DIR=/var/lib/switchboard \
    NO_COLOR=1
WORKDIR /var/lib/switchboard
VOLUME /var/lib/switchboard
USER 10001:10001
EXPOSE 8080/tcp
# SIGTERM drains: /readyz turns 503, clients get room_closed and a 1001 close, and the process
# exits within shutdown_grace_ms (10 s); give the runtime a longer stop timeout than that.
STOPSIGNAL SIGTERM
# GET /healthz with bash alone (the slim image has no curl), on the port SWITCHBOARD_LISTEN names.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SWITCHBOARD_LISTEN##*:} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["switchboard"]
CMD ["serve"]
