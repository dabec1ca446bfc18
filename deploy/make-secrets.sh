#!/bin/sh
# Random secrets for compose.yaml under deploy/secrets/ (kept if present) and a self-signed TLS
# certificate under deploy/tls/ (replace it with the bureau's own).
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets tls
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s secrets/postgres_password ] || rand > secrets/postgres_password
[ -s secrets/custodia_database_url ] ||
  printf 'postgresql+psycopg://custodia:%s@postgres:5432/custodia' "$(cat secrets/postgres_password)" \
    > secrets/custodia_database_url
[ -s secrets/custodia_s3_secret_access_key ] || rand > secrets/custodia_s3_secret_access_key
[ -s secrets/custodia_metrics_token ] || rand > secrets/custodia_metrics_token
[ -s tls/privkey.pem ] ||
  openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=${CUSTODIA_HOSTNAME:-custodia.local}" \
    -keyout tls/privkey.pem -out tls/fullchain.pem 2>/dev/null
echo "secrets in $(pwd)/secrets, TLS certificate in $(pwd)/tls"
