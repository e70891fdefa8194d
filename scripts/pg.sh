# Starts a throwaway PostgreSQL cluster for the tests; source this file.
# Exports REGULARS_TEST_POSTGRES_URL and stops the cluster when the sourcing shell exits.
# Installs Debian's postgresql package when no server binaries are found.

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    echo "regulars: PostgreSQL server not found, installing Debian's postgresql package" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >&2
fi
PG_BIN="$(pg_bin)"

# initdb refuses to run as root: use the package's postgres user, or a user made for the purpose.
PG_USER="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
    PG_USER=postgres
    id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$PG_USER"
fi
as_pg() {
    if [ "$(id -un)" = "$PG_USER" ]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}

PG_DIR="$(mktemp -d /tmp/regulars-pg.XXXXXX)"
chown "$PG_USER" "$PG_DIR"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U regulars --auth=trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; exit 1; }

stop_pg() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_pg EXIT

export REGULARS_TEST_POSTGRES_URL="postgres://regulars@127.0.0.1:$PG_PORT/postgres"
echo "regulars: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') running for the tests on port $PG_PORT" >&2
