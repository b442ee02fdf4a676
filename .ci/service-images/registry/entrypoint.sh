#!/bin/sh
# As in the registry:2 image: a config file as the first argument runs `registry serve FILE`,
# `sh` opens a shell, anything else is passed to the registry binary (`garbage-collect ...`).
set -e

if [ -f "$1" ]; then
    exec /bin/registry serve "$@"
fi

if [ "$1" = "sh" ]; then
    shift
    exec /bin/sh "$@"
fi

exec /bin/registry "$@"
