# Sourced by the CI scripts whose tools come from PyPI (.ci/lint-template,
# .ci/provider-artifacts): each tool lives in its own virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/hub-ci/venv-NAME, created on first use and reused afterwards,
# pinned to exact versions so every run checks against the same releases.
# Env: HUB_CI_PYTHON  the python that creates the virtualenvs (default: python3)

HUB_CI_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hub-ci"

# ensure_venv NAME REQUIREMENT...: makes $HUB_CI_CACHE/venv-NAME hold exactly the REQUIREMENTs
# (pinned `package==version`s), building it afresh when missing, broken or pinned to something
# else. One installer at a time: two CI runs sharing a cache must not build the same venv at once.
ensure_venv() {
    local name="$1"
    shift
    local venv="$HUB_CI_CACHE/venv-$name"
    local stamp="$venv/.hub-ci-installed"
    local python="${HUB_CI_PYTHON:-python3}"
    mkdir -p "$HUB_CI_CACHE"
    (
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$HUB_CI_CACHE/.lock"
            flock 9
        fi
        if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$*" ]]; then
            exit 0
        fi
        echo "hub-ci: installing $* into $venv" >&2
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@" >&2
        echo "$*" >"$stamp"
    )
}
