# Redis for the cluster-mode tests (crates/switchboard/tests/cluster/), on 127.0.0.1:6379.
#
# redis_ensure: does nothing when Redis answers; otherwise installs redis-server when missing (as
# root, with apt-get) and starts it with no persistence. With CI set, a Redis that cannot be had is
# an error (the tests would fail anyway; this says why first); without, a warning, and the cluster
# tests skip themselves.

redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1
  else
    (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3 &&
      [[ "$reply" == +PONG* ]]) 2>/dev/null
  fi
}

redis_ensure() {
  redis_up && return 0
  if ! command -v redis-server >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "installing redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || true
  fi
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis
    echo "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 50); do
      redis_up && return 0
      sleep 0.1
    done
  fi
  if [[ -n "${CI:-}" ]]; then
    echo "error: CI is set and Redis cannot be started on 127.0.0.1:6379 (see /var/log/redis/ci.log)" >&2
    return 1
  fi
  echo "warning: no Redis on 127.0.0.1:6379; the cluster tests will be skipped" >&2
}
