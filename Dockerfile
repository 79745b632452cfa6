# Riffle in a container: `riffle serve` on 0.0.0.0:4566, data in the
# /var/lib/riffle volume, running as an unprivileged user.
#
#   docker build -t riffle .
#   docker run -d -p 4566:4566 -v riffle-data:/var/lib/riffle riffle
#
# The build stage needs only crates.io; the runtime stage is Debian slim with
# the one binary and tzdata (no curl: the health check is `riffle health`).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# Plain RUN (no BuildKit cache mounts), so the classic builder works too.
RUN cargo build --release --locked --bin riffle \
 && install -m 0755 target/release/riffle /usr/local/bin/riffle

FROM debian:${DEBIAN_RELEASE}-slim
# Time zones for Firehose's CustomTimeZone prefixes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid so bind mounts can be prepared for it (`chown 10001`).
RUN groupadd --system --gid 10001 riffle \
 && useradd --system --uid 10001 --gid riffle --no-create-home \
        --home-dir /var/lib/riffle --shell /usr/sbin/nologin riffle \
 && mkdir -p /var/lib/riffle \
 && chown riffle:riffle /var/lib/riffle
COPY --from=build /usr/local/bin/riffle /usr/local/bin/riffle
ENV RIFFLE_LISTEN=0.0.0.0:4566 \
    RIFFLE_DATA_DIR=/var/lib/riffle
# A new named volume starts as a copy of this directory, owned by riffle.
VOLUME ["/var/lib/riffle"]
USER 10001:10001
EXPOSE 4566
# `riffle health` reads RIFFLE_LISTEN, so it follows a changed port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["riffle", "health"]
# SIGTERM (docker stop) lets in-flight requests finish, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["riffle"]
CMD ["serve"]
