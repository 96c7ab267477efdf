# Shared by hazelcast.sh and ignite.sh: fetch jars with Maven, start one JVM in the background,
# wait until a health check passes, stop it. Sourced, not run.
#
# The sourcing script sets, before calling anything here:
#   NAME            short name used in messages ("hazelcast")
#   MAIN_CLASS      the JVM's main class, also how our_pid recognises the process
#   POM             the Maven manifest whose runtime dependencies are the member's classpath
#   MAVEN_PROPS     array of -Dname=value passed to mvn (the version to fetch)
#   MARKER_JAR      a jar name that must be in the download (proves Maven fetched the member)
#   LIBS_DIR        where the jars are cached (.complete marks a finished download)
#   RUN_DIR         config, pid file and console log
#   LOCK_FILE       serialises up/down between concurrent callers
#   START_TIMEOUT, STOP_TIMEOUT (seconds)
# and defines `healthy` (exit 0 when the member answers).

if [[ -n "${JAVA_HOME:-}" ]]; then
  JAVA="${JAVA_HOME}/bin/java"
else
  JAVA="java"
fi

log() { printf '%s.sh: %s\n' "${NAME}" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

PID_FILE_NAME="member.pid"
CONSOLE_LOG_NAME="console.log"

pid_file() { printf '%s/%s' "${RUN_DIR}" "${PID_FILE_NAME}"; }
console_log() { printf '%s/%s' "${RUN_DIR}" "${CONSOLE_LOG_NAME}"; }

# The member is started with fd 9 closed so that it never holds the lock itself.
take_lock() {
  mkdir -p "$(dirname "${LOCK_FILE}")"
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
    die "${NAME} needs Java 17 or newer here; ${JAVA} is '${version}' (set JAVA_HOME)"
  fi
}

# Downloads the member and its runtime dependencies into LIBS_DIR once; the download goes to a
# temporary directory first, so an interrupted run never leaves a half-filled cache behind.
# Maven keeps its own copy in ~/.m2, so a wiped cache refills without the network.
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
  log "fetching ${MARKER_JAR%.jar} and its dependencies with Maven ..."
  if ! mvn -q -B -Dstyle.color=never -f "${POM}" "${MAVEN_PROPS[@]}" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=${tmp}" \
    >"${mvn_log}" 2>&1; then
    tail -n 40 "${mvn_log}" >&2 || true
    rm -rf "${tmp}"
    die "Maven could not fetch ${MARKER_JAR%.jar} (full log: ${mvn_log})"
  fi
  if [[ ! -f "${tmp}/${MARKER_JAR}" ]]; then
    rm -rf "${tmp}"
    die "Maven finished but ${MARKER_JAR} is missing (log: ${mvn_log})"
  fi
  touch "${tmp}/.complete"
  rm -rf "${LIBS_DIR}"
  mv "${tmp}" "${LIBS_DIR}"
  log "cached $(find "${LIBS_DIR}" -name '*.jar' | wc -l) jars in ${LIBS_DIR} ($((SECONDS - started))s)"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

is_member_pid() {
  local cmdline
  cmdline="$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  [[ "${cmdline}" == *"${MAIN_CLASS}"* && "${cmdline}" == *"${RUN_DIR}"* ]]
}

# Prints the pid of the member this script started, or fails when it is not running.
our_pid() {
  local file pid
  file="$(pid_file)"
  [[ -f "${file}" ]] || return 1
  pid="$(cat "${file}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  # A zombie or a recycled pid has another (or an empty) command line.
  is_member_pid "${pid}" || return 1
  echo "${pid}"
}

# The repo's virtualenv when it has the given module (the health checks use the Python clients).
python_with() {
  local py
  for py in "${REPO_ROOT}/.venv/bin/python" python3; do
    if command -v "${py}" >/dev/null 2>&1 && "${py}" -c "import $1" >/dev/null 2>&1; then
      echo "${py}"
      return 0
    fi
  done
  return 1
}

# Starts "$@" (the full java command line) in the background and waits for `healthy`.
# The command line must mention RUN_DIR (a -D property) so that our_pid recognises the process.
launch() {
  local describe="$1"
  shift
  local log_file
  log_file="$(console_log)"
  mkdir -p "${RUN_DIR}"
  local started=${SECONDS}
  echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting ${describe}" >>"${log_file}"
  # setsid: a Ctrl-C in the terminal (or a test runner's process group) must not kill the member.
  setsid "$@" </dev/null >>"${log_file}" 2>&1 9>&- &
  local pid=$!
  echo "${pid}" >"$(pid_file)"

  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "$(pid_file)"
      log "the member exited during start-up; last lines of ${log_file}:"
      tail -n 30 "${log_file}" >&2 || true
      die "${NAME} did not start"
    fi
    if ((SECONDS >= deadline)); then
      log "no healthy answer after ${START_TIMEOUT}s; stopping pid ${pid}"
      tail -n 30 "${log_file}" >&2 || true
      stop_pid "${pid}"
      rm -f "$(pid_file)"
      die "${NAME} did not become healthy within ${START_TIMEOUT}s (log: ${log_file})"
    fi
    sleep 0.5
  done
  echo "${describe} ready (pid ${pid}, started in $((SECONDS - started))s)"
}

stop_pid() {
  local pid="$1" deadline
  kill -TERM "${pid}" 2>/dev/null || return 0
  deadline=$((SECONDS + STOP_TIMEOUT))
  while is_member_pid "${pid}"; do
    if ((SECONDS >= deadline)); then
      log "pid ${pid} still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
      kill -KILL "${pid}" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.3
  done
}

# up: a no-op when our member is healthy; a healthy member on the port that this script did
# not start is used as it is (like kafka.sh and redis.sh).
member_up() {
  local address="$1" pid
  if pid="$(our_pid)"; then
    if healthy; then
      echo "${NAME} already up at ${address} (pid ${pid})"
      return 0
    fi
    log "pid ${pid} is running but ${address} does not answer; restarting it"
    stop_pid "${pid}"
    rm -f "$(pid_file)"
  elif healthy; then
    echo "${NAME} already up at ${address} (not started by this script; using it)"
    return 0
  fi
  rm -f "$(pid_file)"
  start
}

member_down() {
  local address="$1" port="$2" pid started=${SECONDS}
  if ! pid="$(our_pid)"; then
    rm -f "$(pid_file)"
    if port_open "${port}"; then
      echo "${NAME}: something still listens on ${address} but this script did not start it;" \
        "leaving it alone"
    else
      echo "${NAME} is not running"
    fi
    return 0
  fi
  stop_pid "${pid}"
  rm -f "$(pid_file)"
  echo "${NAME} stopped (pid ${pid}, $((SECONDS - started))s)"
}

member_status() {
  local address="$1" pid
  if healthy; then
    if pid="$(our_pid)"; then
      echo "${NAME} up at ${address} (pid ${pid})"
    else
      echo "${NAME} up at ${address} (not started by this script)"
    fi
    return 0
  fi
  if pid="$(our_pid)"; then
    echo "${NAME} pid ${pid} is running but ${address} does not answer"
  else
    echo "${NAME} is down"
  fi
  return 1
}
