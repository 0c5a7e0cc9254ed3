#!/bin/sh
# The image's entrypoint: the first argument names what the container runs.
#   ingest | profile | scoring | notify   one service (settings from RETAIN_* variables)
#   setup                                 every migration and topic, then exit (a one-shot job)
set -eu

usage="usage: retain-entrypoint ingest|profile|scoring|notify|setup"

if [ "$#" -ne 1 ]; then
    echo "$usage" >&2
    exit 64
fi

case "$1" in
    ingest | profile | scoring | notify)
        exec python -m "services.$1"
        ;;
    setup)
        exec python -m services.runtime.setup
        ;;
    *)
        echo "retain-entrypoint: unknown command '$1'" >&2
        echo "$usage" >&2
        exit 64
        ;;
esac
