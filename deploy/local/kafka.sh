#!/usr/bin/env bash
# Fetches, caches, starts, health-checks and stops a single-node KRaft Kafka broker on 127.0.0.1.
#
# Usage: deploy/local/kafka.sh up|down|restart|status|wipe
#
#   up       fetch Kafka with Maven (first run only), format storage (first run only), start the
#            broker in the background and wait until it answers a metadata request
#   down     stop the broker (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT); data is kept
#   restart  down + up, keeping data
#   status   exit 0 when a broker answers on 127.0.0.1:$KAFKA_PORT, 1 otherwise
#   wipe     down + delete the data directory and the broker's logs (the jars stay cached)
#
# Environment (all optional):
#   SHOAL_CACHE_DIR        cache root, default <repo>/.cache (git-ignored)
#   KAFKA_VERSION          Kafka release fetched from Maven Central, default 4.4.0
#   KAFKA_PORT             broker (PLAINTEXT) port, default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller port, default 9093
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer, default 90
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL, default 30
#   KAFKA_HEAP_OPTS        JVM heap flags, default "-Xms256m -Xmx1g"
#   KAFKA_JVM_OPTS         extra JVM flags appended to the defaults
#   KAFKA_CLUSTER_ID       cluster id used when formatting fresh storage, default random
#   KAFKA_HEALTHCHECK      auto (kcat if installed, else Python aiokafka), kcat or python
#   JAVA_HOME              JDK to run (17 or newer); default: `java` on PATH
#   MAVEN_OPTS             passed through to mvn (e.g. -Dmaven.repo.local=/some/dir)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"
CONF_DIR="${SCRIPT_DIR}/kafka"

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_HOST="127.0.0.1"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_HEALTHCHECK="${KAFKA_HEALTHCHECK:-auto}"
BOOTSTRAP="${KAFKA_HOST}:${KAFKA_PORT}"

CACHE_DIR="${SHOAL_CACHE_DIR:-${REPO_ROOT}/.cache}"
mkdir -p "${CACHE_DIR}"
CACHE_DIR="$(cd "${CACHE_DIR}" && pwd)"
LIBS_DIR="${CACHE_DIR}/kafka/${KAFKA_VERSION}/libs"
DATA_DIR="${CACHE_DIR}/kafka-data"
RUN_DIR="${CACHE_DIR}/kafka-run"
LOG_DIR="${RUN_DIR}/logs"
PID_FILE="${RUN_DIR}/kafka.pid"
CONSOLE_LOG="${RUN_DIR}/console.log"
SERVER_PROPERTIES="${RUN_DIR}/server.properties"
LOCK_FILE="${CACHE_DIR}/kafka.lock"

if [[ -n "${JAVA_HOME:-}" ]]; then
  JAVA="${JAVA_HOME}/bin/java"
else
  JAVA="java"
fi

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  echo "usage: $0 up|down|restart|status|wipe" >&2
  exit 2
}

# Serialises up/down/restart/wipe between concurrent callers (e.g. parallel test workers).
# The broker is started with fd 9 closed so that it never holds the lock itself.
take_lock() {
  mkdir -p "${CACHE_DIR}"
  exec 9>"${LOCK_FILE}"
  if ! flock -w 600 9; then
    die "timed out waiting for ${LOCK_FILE}"
  fi
}

check_java() {
  command -v "${JAVA}" >/dev/null 2>&1 || die "java not found (install a JDK 17+ or set JAVA_HOME)"
  local version major
  version="$("${JAVA}" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)"
  major="${version%%.*}"
  if [[ "${major}" == "1" ]]; then
    major="$(echo "${version}" | cut -d. -f2)"
  fi
  if ! [[ "${major}" =~ ^[0-9]+$ ]] || ((major < 17)); then
    die "Kafka ${KAFKA_VERSION} needs Java 17 or newer; ${JAVA} is '${version}' (set JAVA_HOME)"
  fi
}

classpath() { printf '%s/*' "${LIBS_DIR}"; }

# Downloads kafka_2.13 and its runtime dependencies into LIBS_DIR once; a completed download is
# marked with .complete and fetched into a temporary directory first, so an interrupted run
# never leaves a half-filled cache behind.
fetch() {
  if [[ -f "${LIBS_DIR}/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
  local parent tmp mvn_log started
  parent="$(dirname "${LIBS_DIR}")"
  mkdir -p "${parent}"
  rm -rf "${parent}"/libs.partial.* # left by an interrupted download (we hold the lock)
  tmp="$(mktemp -d "${parent}/libs.partial.XXXXXX")"
  mvn_log="${parent}/mvn.log"
  started=${SECONDS}
  log "fetching org.apache.kafka:kafka_2.13:${KAFKA_VERSION} and its dependencies with Maven ..."
  if ! mvn -q -B -Dstyle.color=never -f "${CONF_DIR}/pom.xml" \
    "-Dkafka.version=${KAFKA_VERSION}" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=${tmp}" \
    >"${mvn_log}" 2>&1; then
    tail -n 40 "${mvn_log}" >&2 || true
    rm -rf "${tmp}"
    die "Maven could not fetch Kafka ${KAFKA_VERSION} (full log: ${mvn_log})"
  fi
  if [[ ! -f "${tmp}/kafka_2.13-${KAFKA_VERSION}.jar" ]]; then
    rm -rf "${tmp}"
    die "Maven finished but kafka_2.13-${KAFKA_VERSION}.jar is missing (log: ${mvn_log})"
  fi
  touch "${tmp}/.complete"
  rm -rf "${LIBS_DIR}"
  mv "${tmp}" "${LIBS_DIR}"
  log "cached $(find "${LIBS_DIR}" -name '*.jar' | wc -l) jars in ${LIBS_DIR} ($((SECONDS - started))s)"
}

write_config() {
  mkdir -p "${RUN_DIR}" "${LOG_DIR}"
  cat >"${SERVER_PROPERTIES}" <<EOF
# Generated by deploy/local/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT},CONTROLLER://${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${DATA_DIR}

# Single node: every internal topic has one replica.
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# After a crash (SIGKILL) the restarted broker waits for its old registration to expire before
# the controller lets it in: the default 9 s session makes that the bulk of a post-crash start.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000

# Small footprint for a development machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
}

java_props() {
  printf '%s\n' \
    "-Dlog4j2.configurationFile=${CONF_DIR}/log4j2.xml" \
    "-Dkafka.logs.dir=${LOG_DIR}"
}

format_storage() {
  if [[ -f "${DATA_DIR}/meta.properties" ]]; then
    return 0
  fi
  local cluster_id="${KAFKA_CLUSTER_ID:-}"
  if [[ -z "${cluster_id}" ]]; then
    # A Kafka cluster id is 16 random bytes in unpadded URL-safe base64.
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  fi
  mkdir -p "${DATA_DIR}"
  local -a props
  mapfile -t props < <(java_props)
  log "formatting ${DATA_DIR} (cluster id ${cluster_id})"
  if ! "${JAVA}" "${props[@]}" -cp "$(classpath)" kafka.tools.StorageTool format \
    --config "${SERVER_PROPERTIES}" --cluster-id "${cluster_id}" \
    >>"${CONSOLE_LOG}" 2>&1; then
    tail -n 20 "${CONSOLE_LOG}" >&2 || true
    die "formatting ${DATA_DIR} failed (log: ${CONSOLE_LOG})"
  fi
}

# Prints the pid of the broker this script started, or fails when it is not running.
our_pid() {
  [[ -f "${PID_FILE}" ]] || return 1
  local pid
  pid="$(cat "${PID_FILE}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  # A zombie or a recycled pid has another (or an empty) command line.
  tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "${pid}"
}

port_open() {
  (exec 3<>"/dev/tcp/${KAFKA_HOST}/$1") 2>/dev/null
}

python_with_aiokafka() {
  local py
  for py in "${REPO_ROOT}/.venv/bin/python" python3; do
    if command -v "${py}" >/dev/null 2>&1 && "${py}" -c 'import aiokafka' >/dev/null 2>&1; then
      echo "${py}"
      return 0
    fi
  done
  return 1
}

# Healthy = a metadata request to the bootstrap address lists at least one broker.
healthy() {
  port_open "${KAFKA_PORT}" || return 1
  if [[ "${KAFKA_HEALTHCHECK}" == "kcat" ]] ||
    { [[ "${KAFKA_HEALTHCHECK}" == "auto" ]] && command -v kcat >/dev/null 2>&1; }; then
    command -v kcat >/dev/null 2>&1 || die "KAFKA_HEALTHCHECK=kcat but kcat is not installed"
    local out
    out="$(timeout 15 kcat -L -b "${BOOTSTRAP}" -m 5 2>/dev/null)" || return 1
    grep -qE 'broker [0-9]+ at' <<<"${out}"
    return
  fi
  local py
  if py="$(python_with_aiokafka)"; then
    timeout 20 "${py}" - "${BOOTSTRAP}" >/dev/null 2>&1 <<'EOF'
import asyncio
import sys

from aiokafka import AIOKafkaClient


async def main() -> None:
    client = AIOKafkaClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await client.bootstrap()
    try:
        if not client.cluster.brokers():
            raise SystemExit(1)
    finally:
        await client.close()


asyncio.run(main())
EOF
    return
  fi
  die "no health checker: install kcat (apt-get install kcat) or the venv with aiokafka (make install)"
}

start() {
  check_java
  fetch
  write_config
  format_storage
  if port_open "${KAFKA_PORT}"; then
    die "port ${KAFKA_PORT} is in use by something that is not a healthy Kafka broker"
  fi
  if port_open "${KAFKA_CONTROLLER_PORT}"; then
    die "controller port ${KAFKA_CONTROLLER_PORT} is in use (set KAFKA_CONTROLLER_PORT)"
  fi

  local -a props heap extra
  mapfile -t props < <(java_props)
  read -r -a heap <<<"${KAFKA_HEAP_OPTS}"
  read -r -a extra <<<"${KAFKA_JVM_OPTS}"
  local started=${SECONDS}
  {
    echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting Kafka ${KAFKA_VERSION} on ${BOOTSTRAP}"
  } >>"${CONSOLE_LOG}"
  # setsid: a Ctrl-C in the terminal (or a test runner's process group) must not kill the broker.
  setsid "${JAVA}" "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "${props[@]}" "${extra[@]}" \
    -cp "$(classpath)" kafka.Kafka "${SERVER_PROPERTIES}" \
    </dev/null >>"${CONSOLE_LOG}" 2>&1 9>&- &
  local pid=$!
  echo "${pid}" >"${PID_FILE}"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until healthy; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "${PID_FILE}"
      log "the broker exited during start-up; last lines of ${CONSOLE_LOG} and ${LOG_DIR}/server.log:"
      tail -n 20 "${CONSOLE_LOG}" >&2 || true
      tail -n 20 "${LOG_DIR}/server.log" >&2 2>/dev/null || true
      die "Kafka did not start"
    fi
    if ((SECONDS >= deadline)); then
      log "no answer on ${BOOTSTRAP} after ${KAFKA_START_TIMEOUT}s; stopping pid ${pid}"
      tail -n 20 "${LOG_DIR}/server.log" >&2 2>/dev/null || true
      stop_pid "${pid}"
      rm -f "${PID_FILE}"
      die "Kafka did not become healthy within ${KAFKA_START_TIMEOUT}s (logs: ${RUN_DIR})"
    fi
    sleep 0.5
  done
  echo "kafka ${KAFKA_VERSION} ready at ${BOOTSTRAP} (pid ${pid}, started in $((SECONDS - started))s)"
}

stop_pid() {
  local pid="$1" deadline
  kill -TERM "${pid}" 2>/dev/null || return 0
  deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; do
    if ((SECONDS >= deadline)); then
      log "pid ${pid} still running ${KAFKA_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
      kill -KILL "${pid}" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
}

# kcat (librdkafka) is the second, independent producer the pipeline tests use and the
# documented way to read a dead-letter topic; Debian packages it.
ensure_kcat() {
  command -v kcat >/dev/null 2>&1 && return 0
  local -a sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "kcat is missing; install it: apt-get install kcat"
    sudo=(sudo -n)
  fi
  log "installing Debian's kcat package ..."
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends kcat >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends kcat >/dev/null
  fi
  command -v kcat >/dev/null 2>&1 || die "kcat is still not on PATH after apt-get"
}

cmd_up() {
  local pid
  ensure_kcat
  if pid="$(our_pid)"; then
    if healthy; then
      echo "kafka ${KAFKA_VERSION} already up at ${BOOTSTRAP} (pid ${pid})"
      return 0
    fi
    log "pid ${pid} is running but ${BOOTSTRAP} does not answer; restarting it"
    stop_pid "${pid}"
    rm -f "${PID_FILE}"
  elif healthy; then
    echo "kafka already up at ${BOOTSTRAP} (not started by this script; using it)"
    return 0
  fi
  rm -f "${PID_FILE}"
  start
}

cmd_down() {
  local pid started=${SECONDS}
  if ! pid="$(our_pid)"; then
    rm -f "${PID_FILE}"
    if port_open "${KAFKA_PORT}"; then
      echo "kafka: something still listens on ${BOOTSTRAP} but this script did not start it;" \
        "leaving it alone"
    else
      echo "kafka is not running"
    fi
    return 0
  fi
  stop_pid "${pid}"
  rm -f "${PID_FILE}"
  echo "kafka stopped (pid ${pid}, $((SECONDS - started))s)"
}

cmd_status() {
  local pid
  if healthy; then
    if pid="$(our_pid)"; then
      echo "kafka ${KAFKA_VERSION} up at ${BOOTSTRAP} (pid ${pid}, data ${DATA_DIR})"
    else
      echo "kafka up at ${BOOTSTRAP} (not started by this script)"
    fi
    return 0
  fi
  if pid="$(our_pid)"; then
    echo "kafka pid ${pid} is running but ${BOOTSTRAP} does not answer"
  else
    echo "kafka is down"
  fi
  return 1
}

cmd_wipe() {
  cmd_down
  rm -rf "${DATA_DIR}" "${RUN_DIR}"
  echo "kafka data wiped (${DATA_DIR}); cached jars kept in ${LIBS_DIR}"
}

main() {
  [[ $# -eq 1 ]] || usage
  case "$1" in
    up)
      take_lock
      cmd_up
      ;;
    down)
      take_lock
      cmd_down
      ;;
    restart)
      take_lock
      cmd_down
      cmd_up
      ;;
    status) cmd_status ;;
    wipe)
      take_lock
      cmd_wipe
      ;;
    *) usage ;;
  esac
}

main "$@"
