#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the version the
# server image needs, as Temporal's own compose examples do. Idempotent: an existing
# database is kept and only newer schema versions are applied, so it runs at every `up`.
# Connection from the environment: POSTGRES_SEEDS, DB_PORT, POSTGRES_USER, SQL_PASSWORD.
set -eu

schemas=/etc/temporal/schema/postgresql/v12
for database in temporal:temporal temporal_visibility:visibility; do
  name=${database%%:*}
  set -- --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
    -u "$POSTGRES_USER" --db "$name"
  temporal-sql-tool "$@" create
  temporal-sql-tool "$@" setup-schema -v 0.0
  temporal-sql-tool "$@" update-schema -d "$schemas/${database#*:}/versioned"
done
echo "temporal-schema: databases temporal and temporal_visibility are up to date"
