# syntax=docker/dockerfile:1
# Build: docker build -t paymirror .
# Run:   docker run -e DATABASE_URL=... -e PAYMIRROR__PLATFORM__MERCHANT_CODE=... \
#          -e PAYMIRROR__PLATFORM__SECRET=... -p 8080:8080 paymirror

# --- build stage: dependencies first (cached until Cargo.toml/Cargo.lock change) ---
FROM rust:1.95-slim-bookworm AS build
WORKDIR /app
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
# Everything the source embeds at compile time must be here before the build:
# migrations/ (sqlx::migrate!("./migrations") in src/migrations.rs) and config/
# (include_str!("../../config/default.toml") in src/config/mod.rs). Tests read their
# fixtures under tests/ at run time; nothing under tests/ is embedded. The console's stylesheet
# and script (include_str!("assets/…") in src/console/assets.rs) live under src/.
COPY migrations migrations
COPY config config
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked

# --- runtime stage: slim, non-root, configuration included ---
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 paymirror \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin paymirror
WORKDIR /app
COPY --from=build /app/target/release/paymirror /usr/local/bin/paymirror
# `paymirror serve` reads config/default.toml from its working directory (/app).
COPY config config
USER 10001:10001
ENV PAYMIRROR__SERVER__LISTEN=0.0.0.0:8080 \
    PAYMIRROR__LOG__FORMAT=json
EXPOSE 8080
# The binary probes itself: no curl in the image.
HEALTHCHECK --interval=10s --timeout=4s --start-period=15s --retries=3 \
    CMD ["paymirror", "healthcheck"]
# SIGTERM drains in-flight callbacks and fetches, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["paymirror"]
CMD ["serve"]
