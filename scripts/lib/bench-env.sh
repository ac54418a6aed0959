# Sourced by scripts/bench-peers and scripts/bench-pair: the settings switchboard is benchmarked
# with.

# sb_env PORT DATA_DIR [MAX_CONNECTIONS]: sets SB_ENV to the environment of a switchboard server
# on 127.0.0.1:PORT: every rate budget off (a rate of 0 disables it) and session caps far above
# the load, so the benchmark measures the relay and not the abuse protection. MAX_CONNECTIONS
# empty or absent leaves max_connections unset, so the server derives it from its open-files
# limit.
sb_env() {
  SB_ENV=(
    SWITCHBOARD_LISTEN="127.0.0.1:$1"
    SWITCHBOARD_DATA_DIR="$2"
    SWITCHBOARD_RATE_LIMITS__MESSAGES_PER_SEC=0
    SWITCHBOARD_RATE_LIMITS__CANDIDATES_PER_SEC=0
    SWITCHBOARD_RATE_LIMITS__ROOM_MESSAGES_PER_SEC=0
    SWITCHBOARD_RATE_LIMITS__JOINS_PER_SEC_PER_ADDRESS=0
    SWITCHBOARD_RATE_LIMITS__SESSIONS_PER_SEC_PER_ADDRESS=0
    SWITCHBOARD_MAX_SESSIONS_PER_ADDRESS=1000000
  )
  if [[ -n ${3:-} ]]; then SB_ENV+=(SWITCHBOARD_MAX_CONNECTIONS="$3"); fi
}

# wait_port PORT PID: waits until something accepts on 127.0.0.1:PORT; fails if PID exits first
# or after 10 s.
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "== server exited before opening port $1" >&2; return 1; }
    sleep 0.1
  done
  echo "== server did not open port $1" >&2
  return 1
}
