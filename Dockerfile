# syntax=docker/dockerfile:1
#
# DataGuardian server image.
#
#   docker build -t dataguardian .
#   docker run -d -p 8080:8080 -e DG_ADMIN_TOKEN \
#     -v dataguardian-data:/var/lib/dataguardian -v /mnt/hd-externo/dataguardian:/var/backups dataguardian
#
# The process runs as UID/GID 1000: a host directory bind-mounted at
# /var/backups must be writable by it (sudo chown -R 1000:1000 DIR). Create
# the storage location with path /var/backups. Stopping waits for running
# backups up to one minute: give `docker stop` a longer timeout (-t 90).
#
# Build args:
#   PG_CLIENT_MAJOR  PostgreSQL client tools to install from apt.postgresql.org
#                    (default 17). pg_dump must be at least the server's major
#                    version and dumps every older server, so pick the newest
#                    major among the servers you back up.

# ---------------------------------------------------------------------------
# Build: one static binary (pure-Go SQLite, so no cgo and no libc at runtime).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dataguardian ./examples/dataguardian

# ---------------------------------------------------------------------------
# The PGDG signing key, as Debian's own postgresql-common package ships it
# (authenticated by the Debian archive; nothing fetched over plain HTTPS).
FROM debian:bookworm-slim AS pgdg-key
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && cp /usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg /pgdg.gpg \
 && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------------------
# Runtime: the binary plus the client tools the drivers run.
FROM debian:bookworm-slim

ARG PG_CLIENT_MAJOR=17

COPY --from=pgdg-key /pgdg.gpg /usr/share/keyrings/apt.postgresql.org.gpg

# - postgresql-client-N: pg_dump/pg_restore (also found under /usr/lib/postgresql/N/bin);
#   bookworm itself only has 15, too old for newer servers.
# - mariadb-client: mariadb-dump/mariadb for MySQL and MariaDB datasources.
# - sqlite3, zstd, lz4, gzip: to inspect and recover backups by hand
#   (the compression itself is built into the binary).
# - curl: the HEALTHCHECK. tzdata: schedules in any time zone (TZ=...).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && echo "deb [signed-by=/usr/share/keyrings/apt.postgresql.org.gpg] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      "postgresql-client-${PG_CLIENT_MAJOR}" mariadb-client sqlite3 zstd lz4 gzip curl tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 dataguardian \
 && useradd --uid 1000 --gid 1000 --home-dir /var/lib/dataguardian --no-create-home \
      --shell /usr/sbin/nologin dataguardian \
 && install -d -o 1000 -g 1000 -m 0700 /var/lib/dataguardian \
 && install -d -o 1000 -g 1000 -m 0755 /var/backups

COPY --from=build /out/dataguardian /usr/local/bin/dataguardian

# Metadata database (SQLite by default) and secret.key, which seals the
# datasource passwords: keep this volume, or the passwords are lost.
VOLUME ["/var/lib/dataguardian"]
WORKDIR /var/lib/dataguardian
# Files and SQLite datasources: mount them under /srv, the only directory
# (besides the backup disk) the API may point datasources at.
ENV DG_DATA_DIR=/var/lib/dataguardian \
    DG_LISTEN=0.0.0.0:8080 \
    DG_STORAGE_DIR=/var/backups \
    DG_ALLOW_PATHS=/srv
USER 1000:1000
EXPOSE 8080

# /health is public; it answers 503 when the metadata store is unreachable.
# The port follows DG_LISTEN ("0.0.0.0:8080" -> 8080).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${DG_LISTEN##*:}/health" || exit 1

ENTRYPOINT ["dataguardian"]
CMD ["serve"]
