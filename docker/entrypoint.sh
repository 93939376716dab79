#!/bin/sh
# Container entrypoint: bring the database schema up to date, then become imagebot.
set -eu

if [ "$#" -eq 0 ]; then
    set -- run
fi

case "$1" in
    # Commands that do not need the database (or are the migration itself) skip it, so
    # `docker run imagebot check-config` works before PostgreSQL is reachable.
    migrate | check-config | keys | help | -h | --help | --version) ;;
    *) imagebot migrate ;;
esac

exec imagebot "$@"
