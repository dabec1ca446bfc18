# Sourced by .ci/run and scripts/bench: start PostgreSQL, Redis and RabbitMQ where they are installed
# but not running (a fresh machine of this kind has them running already).
start_if_down() {  # port, name, command...
  local port=$1 name=$2; shift 2
  if ! (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "starting $name"
    "$@" || echo "could not start $name" >&2
    for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 1; done
  fi
}
start_if_down 5432 PostgreSQL bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
start_if_down 6379 Redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log
start_if_down 5672 RabbitMQ rabbitmq-server -detached
