# Sourced by the other scripts: puts the project's Python tools (cargo-lambda, moto) on PATH,
# installing them from PyPI into .tools/venv the first time. A private virtualenv works on a
# fresh machine, never touches the system Python, and pins the versions the tests were run with.
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools"
TOOLS_VENV="$TOOLS_DIR/venv"
CARGO_LAMBDA_VERSION="1.9.2"
MOTO_VERSION="5.2.1"

ensure_tools() {
    # $@: the pip requirements this caller needs
    if [ ! -x "$TOOLS_VENV/bin/python" ]; then
        python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet --upgrade pip
    fi
    local missing=()
    for requirement in "$@"; do
        "$TOOLS_VENV/bin/pip" show --quiet "${requirement%%[=\[]*}" >/dev/null 2>&1 || missing+=("$requirement")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing ${missing[*]} into .tools/venv" >&2
        "$TOOLS_VENV/bin/pip" install --quiet "${missing[@]}"
    fi
    export PATH="$TOOLS_VENV/bin:$PATH"
}

ensure_browser() {
    # The connect page's end-to-end test drives a real Chromium through chromedriver
    # (Debian's `chromium` and `chromium-driver`). Installed with apt-get when missing, as
    # root or through sudo; a machine where neither works gets a message naming the packages.
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return 0
    fi
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "installing chromium and chromium-driver with apt-get" >&2
    if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
        echo "could not install chromium and chromium-driver (apt-get); the connect page test needs them" >&2
        return 1
    fi
}

forget_cargo_test_env() {
    # A test that runs these scripts hands down the variables cargo sets for a test process
    # (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...). Build scripts such as ring's read them with
    # `rerun-if-env-changed`, and cargo compares them with its own environment: called from a
    # test, cargo would rerun ring's build and rebuild rustls, reqwest and the AWS SDK behind
    # the hub's first request, minutes that the tests read as a hub that does not answer.
    local name
    for name in $(compgen -e); do
        case "$name" in
            CARGO_PKG_* | CARGO_MANIFEST_* | CARGO_CRATE_NAME | CARGO_BIN_* | CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | CARGO_RUSTC_CURRENT_DIR)
                unset "$name" ;;
        esac
    done
}
