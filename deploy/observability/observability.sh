#!/usr/bin/env bash
# Starts, health-checks and stops Prometheus (with Shoal's scrape configuration and alerting
# rules), and Grafana and Jaeger where their binaries are installed, on 127.0.0.1 without
# Docker. deploy/observability/docker-compose.yml starts all three on a Docker engine.
#
# Usage: deploy/observability/observability.sh install|up|down|status
#
#   install Prometheus and promtool from Debian's `prometheus` package when missing (make
#           test runs it, so the rule and stack tests run rather than skip)
#   up      Prometheus from Debian's `prometheus` package (apt-get installs it when missing)
#           on 127.0.0.1:$PROMETHEUS_PORT, scraping 127.0.0.1:9464 and evaluating
#           deploy/prometheus/alerts.yml; then Grafana (`grafana-server` or `grafana` on the
#           PATH, dashboards provisioned) on :3000 and Jaeger (`jaeger-all-in-one` or `jaeger`
#           on the PATH, OTLP on :4317, UI on :16686) when they are installed: neither has a
#           package in Debian, PyPI or the other registries this project installs from, so
#           without them the script says so and starts what it has
#   down    stops what this script started
#   status  exit 0 when Prometheus answers /-/ready
#
# Environment (all optional):
#   SHOAL_CACHE_DIR     cache root, default <repo>/.cache; pid files, logs and Prometheus's data
#                       live in $SHOAL_CACHE_DIR/observability
#   PROMETHEUS_PORT     default 9090
#   PROMETHEUS_CONFIG   scrape configuration, default deploy/prometheus/prometheus.yml (one
#                       of your own names its targets; keep `rule_files` pointing at alerts.yml)
#   START_TIMEOUT       seconds to wait for each server, default 30
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"
REPO_ROOT="$(cd "${DEPLOY_DIR}/.." && pwd)"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_CONFIG="${PROMETHEUS_CONFIG:-${DEPLOY_DIR}/prometheus/prometheus.yml}"
START_TIMEOUT="${START_TIMEOUT:-30}"
CACHE_DIR="${SHOAL_CACHE_DIR:-${REPO_ROOT}/.cache}"
RUN_DIR="${CACHE_DIR}/observability"
mkdir -p "${RUN_DIR}"

log() { printf 'observability.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

answers() { curl -fsS --max-time 2 "$1" >/dev/null 2>&1; }

wait_for() {
  local url="$1" name="$2" deadline=$((SECONDS + START_TIMEOUT))
  until answers "${url}"; do
    ((SECONDS < deadline)) || die "${name} did not answer ${url} within ${START_TIMEOUT}s (log: ${RUN_DIR}/${name}.log)"
    sleep 0.5
  done
}

start_daemon() {
  local name="$1"
  shift
  nohup "$@" >"${RUN_DIR}/${name}.log" 2>&1 &
  echo $! >"${RUN_DIR}/${name}.pid"
}

stop_daemon() {
  local name="$1" pid_file="${RUN_DIR}/$1.pid"
  [[ -f "${pid_file}" ]] || return 0
  local pid
  pid="$(cat "${pid_file}")"
  if kill -0 "${pid}" 2>/dev/null; then
    kill "${pid}"
    for _ in $(seq 1 40); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "${pid}" 2>/dev/null && kill -9 "${pid}"
  fi
  rm -f "${pid_file}"
  log "${name} stopped"
}

install_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    return 0
  fi
  local -a sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "prometheus is missing; install it: apt-get install prometheus"
    sudo=(sudo -n)
  fi
  log "installing Debian's prometheus package"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends prometheus >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends prometheus >/dev/null \
      || die "cannot install prometheus (apt-get install prometheus)"
  fi
  # The package may start its own service on :9090 with its own configuration.
  if command -v systemctl >/dev/null 2>&1; then
    "${sudo[@]}" systemctl stop prometheus >/dev/null 2>&1 || true
  fi
  command -v promtool >/dev/null 2>&1 || die "promtool is still not on PATH after apt-get"
}

prometheus_binary() {
  install_prometheus
  command -v prometheus
}

up() {
  local ready="http://127.0.0.1:${PROMETHEUS_PORT}/-/ready"
  if answers "${ready}"; then
    log "a Prometheus already answers on 127.0.0.1:${PROMETHEUS_PORT}"
  else
    local binary
    binary="$(prometheus_binary)"
    start_daemon prometheus "${binary}" \
      --config.file="${PROMETHEUS_CONFIG}" \
      --storage.tsdb.path="${RUN_DIR}/prometheus-data-${PROMETHEUS_PORT}" \
      --web.listen-address="127.0.0.1:${PROMETHEUS_PORT}" \
      --web.enable-lifecycle
    wait_for "${ready}" prometheus
    log "Prometheus on http://127.0.0.1:${PROMETHEUS_PORT} (${PROMETHEUS_CONFIG})"
  fi
  local grafana=""
  grafana="$(command -v grafana-server || command -v grafana || true)"
  if [[ -n "${grafana}" ]]; then
    local provisioning="${RUN_DIR}/grafana-provisioning"
    mkdir -p "${provisioning}/dashboards" "${provisioning}/datasources" "${RUN_DIR}/grafana-data"
    cp "${DEPLOY_DIR}/grafana/provisioning/datasources/prometheus.yml" "${provisioning}/datasources/"
    sed "s#/var/lib/grafana/dashboards/shoal#${DEPLOY_DIR}/grafana/dashboards#" \
      "${DEPLOY_DIR}/grafana/provisioning/dashboards/shoal.yml" >"${provisioning}/dashboards/shoal.yml"
    local command=("${grafana}")
    [[ "$(basename "${grafana}")" == grafana ]] && command+=(server)
    GF_PATHS_PROVISIONING="${provisioning}" GF_PATHS_DATA="${RUN_DIR}/grafana-data" \
      GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=3000 GF_AUTH_ANONYMOUS_ENABLED=true \
      start_daemon grafana "${command[@]}"
    wait_for "http://127.0.0.1:3000/api/health" grafana
    log "Grafana on http://127.0.0.1:3000 (dashboards in the folder Shoal)"
  else
    log "Grafana is not installed here and no package registry this project reaches has it;"
    log "  use deploy/observability/docker-compose.yml on a Docker engine, or install Grafana"
    log "  and run this again (its dashboards are deploy/grafana/dashboards/*.json)"
  fi
  local jaeger=""
  jaeger="$(command -v jaeger-all-in-one || command -v jaeger || true)"
  if [[ -n "${jaeger}" ]]; then
    COLLECTOR_OTLP_ENABLED=true start_daemon jaeger "${jaeger}"
    wait_for "http://127.0.0.1:16686/" jaeger
    log "Jaeger on http://127.0.0.1:16686 (OTLP gRPC on 127.0.0.1:4317: shoal serve --trace-exporter otlp)"
  else
    log "Jaeger is not installed here and no package registry this project reaches has it;"
    log "  use the compose file, or shoal serve --trace-exporter console to see spans on stdout"
  fi
}

case "${1:-}" in
  install) install_prometheus ;;
  up) up ;;
  down)
    stop_daemon jaeger
    stop_daemon grafana
    stop_daemon prometheus
    ;;
  status) answers "http://127.0.0.1:${PROMETHEUS_PORT}/-/ready" ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
