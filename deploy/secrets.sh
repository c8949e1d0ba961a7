#!/bin/sh
# Makes the secret files docker-compose.yml mounts, once: random passwords,
# the control plane's database URL with its password, a key ring for
# tenants' signing keys and Temporal payloads, and the operators' codec
# token. An existing file is kept (the database and the
# sealed keys depend on it). Run by `task secrets`.
set -eu
dir=$(dirname "$0")/secrets
mkdir -p "$dir"
# Compose mounts each file as it is: the containers' own users (postgres,
# temporal, nonroot) must read it, so the files are 0644 and the directory,
# which no container sees, keeps other users of the host out.
chmod 700 "$dir"
umask 022
random() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40; }
make() { # name, value
  if [ ! -s "$dir/$1" ]; then printf '%s\n' "$2" > "$dir/$1"; echo "made $dir/$1"; fi
}
make postgres_password "$(random)"
make temporal_db_password "$(random)"
make controlplane_db_password "$(random)"
make controlplane_database_url "postgres://controlplane:$(cat "$dir/controlplane_db_password")@postgres:5432/controlplane?sslmode=disable"
make key_encryption_keys "k1=$(head -c 32 /dev/urandom | base64)"
make codec_token "$(random)"
# The relay's password, if it needs one: write it here.
[ -e "$dir/smtp_password" ] || : > "$dir/smtp_password"
