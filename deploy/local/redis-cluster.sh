#!/usr/bin/env bash
# Starts, health-checks and stops a 3-master Redis Cluster on 127.0.0.1 (no replicas, or one
# replica per master).
#
# Usage: deploy/local/redis-cluster.sh up|down|status
#
#   up      start three cluster nodes with deploy/local/redis.sh (REDIS_CLUSTER_NODE=yes) on
#           ports $REDIS_CLUSTER_PORT, +1, +2 (six, up to +5, with REDIS_CLUSTER_REPLICAS=1: the
#           last three are the replicas); join them into one cluster with
#           `redis-cli --cluster create` the first time (the nodes remember it in nodes.conf);
#           wait until every node reports cluster_state:ok
#   down    stop the nodes (their run directories, nodes.conf included, are kept)
#   status  exit 0 when the first node reports cluster_state:ok
#
# Environment (all optional): REDIS_CLUSTER_PORT (first port, default 7000),
# REDIS_CLUSTER_REPLICAS (0, the default, or 1: a replica per master, which takes over when its
# master fails; Shoal then waits for it after every write, see README "Operating Redis Cluster"),
# REDIS_CLUSTER_TIMEOUT (seconds to wait for cluster_state:ok, default 60), and what
# deploy/local/redis.sh reads (SHOAL_CACHE_DIR, REDIS_APPENDFSYNC=always for an append-only
# file on every node, REDIS_CLUSTER_NODE_TIMEOUT for how fast a failed master is replaced, ...).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-7000}"
REDIS_CLUSTER_TIMEOUT="${REDIS_CLUSTER_TIMEOUT:-60}"
REDIS_CLUSTER_REPLICAS="${REDIS_CLUSTER_REPLICAS:-0}"
HOST="127.0.0.1"

[[ "${REDIS_CLUSTER_PORT}" =~ ^[0-9]+$ ]] || {
  echo "redis-cluster.sh: REDIS_CLUSTER_PORT must be a number" >&2
  exit 1
}
[[ "${REDIS_CLUSTER_REPLICAS}" =~ ^[01]$ ]] || {
  echo "redis-cluster.sh: REDIS_CLUSTER_REPLICAS must be 0 or 1" >&2
  exit 1
}
PORTS=()
for ((offset = 0; offset < 3 * (1 + REDIS_CLUSTER_REPLICAS); offset++)); do
  PORTS+=("$((REDIS_CLUSTER_PORT + offset))")
done

log() { printf 'redis-cluster.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

cluster_state() {
  timeout 5 redis-cli -h "${HOST}" -p "$1" cluster info 2>/dev/null |
    tr -d '\r' | sed -n 's/^cluster_state://p'
}

known_nodes() {
  timeout 5 redis-cli -h "${HOST}" -p "$1" cluster info 2>/dev/null |
    tr -d '\r' | sed -n 's/^cluster_known_nodes://p'
}

# A replica counts once it has synchronised with its master (writes wait for it from then on).
replica_synced() {
  local replication
  replication="$(timeout 5 redis-cli -h "${HOST}" -p "$1" info replication 2>/dev/null | tr -d '\r')"
  grep -q '^role:master' <<<"${replication}" || grep -q '^master_link_status:up' <<<"${replication}"
}

all_ok() {
  local port
  for port in "${PORTS[@]}"; do
    [[ "$(cluster_state "${port}")" == "ok" ]] || return 1
    replica_synced "${port}" || return 1
  done
}

cmd_up() {
  local port started=${SECONDS}
  for port in "${PORTS[@]}"; do
    REDIS_PORT="${port}" REDIS_CLUSTER_NODE=yes "${SCRIPT_DIR}/redis.sh" up >/dev/null
  done
  if [[ "$(known_nodes "${PORTS[0]}")" == "1" ]]; then
    local -a addresses=()
    for port in "${PORTS[@]}"; do
      addresses+=("${HOST}:${port}")
    done
    log "creating the cluster of ${addresses[*]} ..."
    # With replicas, redis-cli makes the first three nodes masters and the others their replicas.
    timeout 60 redis-cli --cluster create "${addresses[@]}" \
      --cluster-replicas "${REDIS_CLUSTER_REPLICAS}" \
      --cluster-yes >/dev/null || die "redis-cli --cluster create failed"
  fi
  local deadline=$((SECONDS + REDIS_CLUSTER_TIMEOUT))
  until all_ok; do
    ((SECONDS < deadline)) || die "the cluster did not reach cluster_state:ok in ${REDIS_CLUSTER_TIMEOUT}s"
    sleep 0.3
  done
  echo "redis cluster ready at ${HOST}:${PORTS[0]},${HOST}:${PORTS[1]},${HOST}:${PORTS[2]}" \
    "(${#PORTS[@]} nodes, $((SECONDS - started))s)"
}

cmd_down() {
  local port offset
  # Replicas' ports too, whatever REDIS_CLUSTER_REPLICAS says now (redis.sh leaves alone a port
  # it did not start).
  for ((offset = ${#PORTS[@]}; offset < 6; offset++)); do
    PORTS+=("$((REDIS_CLUSTER_PORT + offset))")
  done
  for port in "${PORTS[@]}"; do
    REDIS_PORT="${port}" "${SCRIPT_DIR}/redis.sh" down >/dev/null
  done
  echo "redis cluster stopped (ports ${PORTS[0]}-${PORTS[-1]})"
}

cmd_status() {
  if [[ "$(cluster_state "${PORTS[0]}")" == "ok" ]]; then
    echo "redis cluster up at ${HOST}:${PORTS[0]} (cluster_state:ok)"
    return 0
  fi
  echo "redis cluster is down or not formed at ${HOST}:${PORTS[0]}"
  return 1
}

main() {
  [[ $# -eq 1 ]] || {
    echo "usage: $0 up|down|status" >&2
    exit 2
  }
  case "$1" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
      echo "usage: $0 up|down|status" >&2
      exit 2
      ;;
  esac
}

main "$@"
