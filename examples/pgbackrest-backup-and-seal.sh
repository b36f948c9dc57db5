#!/usr/bin/env bash
# Take a pgBackRest backup and seal it for btar (docs/pgbackrest-layout.md), e.g. from cron:
#   0 2 * * *  postgres  /opt/btar/examples/pgbackrest-backup-and-seal.sh orders main full
# The seal checks every repository file of the new backup against the manifest's SHA-1 and
# records its SHA-256, which btar verifies each copy against; until a backup is sealed, btar
# does not copy it. WAL needs nothing: btar reads each archived segment itself.
# Environment: BTAR_CONFIG (the btar.toml naming the service), BTAR_PYTHON (a Python with btar
# installed; default python3), PGBACKREST_CONFIG if pgBackRest's file is not the default one.
set -euo pipefail
service="${1:?usage: $0 SERVICE STANZA [full|diff|incr]}"
stanza="${2:?usage: $0 SERVICE STANZA [full|diff|incr]}"
type="${3:-full}"
pgbackrest --stanza="$stanza" --type="$type" backup
"${BTAR_PYTHON:-python3}" -m engine.formats.pgbackrest seal "$service"
