#!/bin/sh
# Runs once, when the postgres volume is first initialised: a role per user
# of the database, with passwords from the secret files, and the control
# plane's database. Temporal's role creates its own two databases (the
# temporal-schema one-shot).
set -eu
temporal_pw=$(cat /run/secrets/temporal_db_password)
controlplane_pw=$(cat /run/secrets/controlplane_db_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v temporal_pw="$temporal_pw" -v controlplane_pw="$controlplane_pw" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_pw';
CREATE ROLE controlplane LOGIN PASSWORD :'controlplane_pw';
CREATE DATABASE controlplane OWNER controlplane;
SQL
