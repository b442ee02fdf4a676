#!/bin/sh
# As in the pypiserver/pypiserver:v2.3.2 image: make sure the pypiserver user (uid 9898) can
# read /data and write /data/packages (chowning them if it cannot), then run `pypi-server` as
# that user with the container's arguments, or `run -p $PYPISERVER_PORT --server gunicorn`
# when there are none (serving ~pypiserver/packages, that is /data/packages).
set -eu

uid=$(id -u)
if [ "$uid" -ne 0 ] && [ "$uid" -ne "$(id -u pypiserver)" ]; then
    echo "The pypiserver container was run as a non-root, non-pypiserver user. Pypiserver will be run as this user if possible, but this is not officially supported." >&2
    user_id=$uid
else
    user_id=$(id -u pypiserver)
fi

# Runs a check as the user pypi-server will run as.
as_server() {
    if [ "$uid" -ne 0 ]; then "$@"; else gosu pypiserver "$@"; fi
}

fail() {
    echo "Cannot start pypiserver: $*" >&2
    echo "If you mount a volume at /data or /data/packages, give uid $user_id or gid $(id -g pypiserver) access to it." >&2
    exit 1
}

if ! as_server test -r /data -a -x /data; then
    chown -R "$user_id:pypiserver" /data || true
    as_server test -r /data -a -x /data || fail "uid $user_id must have read/execute access to /data"
fi

if [ ! -d /data/packages ]; then
    as_server test -w /data || fail "/data/packages does not exist and uid $user_id cannot create it"
    as_server mkdir /data/packages
fi

if ! as_server test -w /data/packages -a -r /data/packages -a -x /data/packages; then
    chown -R "$user_id:pypiserver" /data/packages || true
    as_server test -w /data/packages -a -r /data/packages -a -x /data/packages \
        || fail "uid $user_id must have read/write/execute access to /data/packages"
fi

if [ "$#" -eq 0 ]; then
    set -- run -p "${PYPISERVER_PORT:-$PORT}" --server gunicorn
fi

if [ "$uid" -ne 0 ]; then
    exec pypi-server "$@"
fi
exec gosu pypiserver pypi-server "$@"
