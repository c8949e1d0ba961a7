#!/bin/sh
# Makes the secret files docker-compose.yml mounts, once: random passwords,
# the control plane's database URL with its password, a key ring for
# tenants' signing keys and Temporal payloads, the operators' codec token,
# and the certificates of Temporal's mTLS and of the operator gateway
# (docs/deployment.md, "Temporal: mTLS, the operator gateway, the UI").
# An existing file is kept (the database, the sealed keys and the issued
# certificates depend on it). Run by `task secrets`.
#
# CP_SECRETS_DIR   where to write (default: deploy/secrets beside this script)
# CP_OPERATOR_EMAIL the example operator's address (default operator@example.com)
set -eu
dir=${CP_SECRETS_DIR:-$(dirname "$0")/secrets}
operator=${CP_OPERATOR_EMAIL:-operator@example.com}
mkdir -p "$dir"
# Compose mounts each file as it is (it cannot change a file secret's owner
# or mode): the containers' own users (postgres, temporal, nonroot) must
# read it, so the files they read are 0644 and the directory, which no
# container sees, keeps other users of the host out. The two CA keys, which
# no container reads, are 0600.
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

# Certificates. Two CAs that never sign for each other:
#
#   temporal-ca.pem   Temporal's: the server (temporal.pem, also its
#                     internode client) and its clients, the control plane
#                     (controlplane.pem) and the UI (temporal-ui.pem).
#   operator-ca.pem   the operators': the gateway's server certificate
#                     (operator-gateway.pem) and one certificate per
#                     operator, whose name is the address a repair is
#                     stamped with (operator.pem: CP_OPERATOR_EMAIL).
#
# A certificate and its key are made together, only when both are missing;
# to renew one, remove both, run `task secrets` again and restart the
# services that read it. To withdraw an operator's certificate early, add
# its SHA-256 fingerprint (openssl x509 -noout -fingerprint -sha256 -in
# it.pem) to CP_OPERATOR_REVOKED of controlplane-api and restart it.
#
# Another operator's certificate: they make the key and a request on their
# machine, you sign it here, and only the request and the certificate travel.
#   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ada-key.pem
#   openssl req -new -key ada-key.pem -subj /CN=ada@example.com -out ada.csr
#   printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=email:ada@example.com\n' > ada.ext
#   openssl x509 -req -in ada.csr -CA deploy/secrets/operator-ca.pem -CAkey deploy/secrets/operator-ca-key.pem \
#     -set_serial "0x$(openssl rand -hex 16)" -days 825 -extfile ada.ext -out ada.pem
command -v openssl > /dev/null || { echo "$0: openssl is needed to make the certificates" >&2; exit 1; }
case $operator in
  *@*@* | @* | *@ | *[!A-Za-z0-9.@_%+-]*) echo "$0: CP_OPERATOR_EMAIL=$operator is not a mail address" >&2; exit 1 ;;
  *@*) ;;
  *) echo "$0: CP_OPERATOR_EMAIL=$operator is not a mail address" >&2; exit 1 ;;
esac

# Keys and requests are made in a directory inside $dir, never in /tmp, and
# moved into place only when the certificate is signed.
work=$(mktemp -d "$dir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A configuration of our own, so the host's openssl.cnf adds nothing.
printf '[req]\ndistinguished_name = dn\n[dn]\n' > "$work/req.cnf"

# pair: whether cert and key (file names) both exist; one without the other
# is an error, never overwritten.
pair() {
  if [ -e "$dir/$1" ] && [ -e "$dir/$2" ]; then return 0; fi
  if [ -e "$dir/$1" ] || [ -e "$dir/$2" ]; then
    echo "$0: $dir/$1 or $dir/$2 exists without the other: remove it to make both again" >&2
    exit 1
  fi
  return 1
}
# sign: a new key and a certificate for it. Arguments: cert, key, subject,
# days, extensions (openssl x509 -extfile lines), and the signing CA's cert
# and key, or none to sign itself.
sign() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key" 2> /dev/null
  openssl req -new -config "$work/req.cnf" -key "$work/key" -subj "$3" -out "$work/csr"
  printf '%b' "$5" > "$work/ext"
  if [ $# -gt 5 ]; then
    openssl x509 -req -in "$work/csr" -CA "$dir/$6" -CAkey "$dir/$7" -set_serial "0x$(openssl rand -hex 16)" \
      -days "$4" -extfile "$work/ext" -out "$work/cert" 2> /dev/null
  else
    openssl x509 -req -in "$work/csr" -signkey "$work/key" -set_serial "0x$(openssl rand -hex 16)" \
      -days "$4" -extfile "$work/ext" -out "$work/cert" 2> /dev/null
  fi
  mv "$work/key" "$dir/$2"
  mv "$work/cert" "$dir/$1"
  echo "made $dir/$1, $dir/$2"
}
ca() { # cert, key, name
  pair "$1" "$2" && return
  sign "$1" "$2" "/O=IntelliAuth/CN=$3" 3650 \
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n'
  chmod 600 "$dir/$2"
}
leaf() { # cert, key, subject, extendedKeyUsage, subjectAltName, CA cert, CA key
  pair "$1" "$2" && return
  sign "$1" "$2" "$3" 825 \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=$4\nsubjectAltName=$5\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" \
    "$6" "$7"
  chmod 644 "$dir/$2" # read by a container's user, like the passwords
}

ca temporal-ca.pem temporal-ca-key.pem "Temporal CA"
# The server's certificate is also what its own services present to each
# other and to the frontend (internode mTLS), hence clientAuth.
leaf temporal.pem temporal-key.pem /O=IntelliAuth/CN=temporal serverAuth,clientAuth \
  DNS:temporal,DNS:localhost,IP:127.0.0.1 temporal-ca.pem temporal-ca-key.pem
leaf controlplane.pem controlplane-key.pem /O=IntelliAuth/CN=controlplane clientAuth \
  DNS:controlplane temporal-ca.pem temporal-ca-key.pem
leaf temporal-ui.pem temporal-ui-key.pem /O=IntelliAuth/CN=temporal-ui clientAuth \
  DNS:temporal-ui temporal-ca.pem temporal-ca-key.pem

ca operator-ca.pem operator-ca-key.pem "Operator CA"
leaf operator-gateway.pem operator-gateway-key.pem /O=IntelliAuth/CN=controlplane-api serverAuth \
  DNS:controlplane-api,DNS:localhost,IP:127.0.0.1 operator-ca.pem operator-ca-key.pem
# In a subject, + joins two attributes unless escaped.
leaf operator.pem operator-key.pem "/CN=$(printf '%s' "$operator" | sed 's/+/\\+/g')" clientAuth \
  "email:$operator" operator-ca.pem operator-ca-key.pem
