#!/usr/bin/env bash
# Build the binaries SEV's test suite runs as services, into a cache dir that
# survives between runs:
#
#   ferretdb-sev  MongoDB-wire server (FerretDB v1 + SQLite), from tools/ferretdb
#   twitch-cli    Twitch's CLI, for signed EventSub webhooks
#
# Usage: scripts/build-test-tools.sh [TOOL...]   (TOOL: ferretdb-sev, twitch-cli; default both)
#
# Idempotent: a tool whose binary was already built from the same inputs is
# skipped (a stamp file beside it records what it was built from). Prints where
# the binaries are. Tries every requested tool, then exits non-zero if any
# build failed.
#
# Environment:
#   SEV_TOOLS_DIR  cache dir (default: $HOME/.cache/sev-tools); binaries go in its bin/
#   GO             the go command (default: go on PATH, else /usr/local/go/bin/go)
#   SEV_TOOLS_FORCE=1  rebuild even if the stamps match
set -euo pipefail

TWITCH_CLI_VERSION="v1.1.25"
FERRETDB_VERSION="v1.24.2" # must match tools/ferretdb/go.mod

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${SEV_TOOLS_DIR:-$HOME/.cache/sev-tools}"
bin_dir="$tools_dir/bin"

log() { printf 'build-test-tools: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

want_ferretdb=0 want_twitch=0
# twitch-cli is built only when asked for: the Go module proxy reachable here refuses it (403).
[[ $# -gt 0 ]] || set -- ferretdb-sev
for tool in "$@"; do
    case "$tool" in
        ferretdb-sev) want_ferretdb=1 ;;
        twitch-cli) want_twitch=1 ;;
        *) die "unknown tool '$tool' (known: ferretdb-sev, twitch-cli)" ;;
    esac
done

if [[ -n "${GO:-}" ]]; then
    go_cmd="$GO"
elif command -v go >/dev/null 2>&1; then
    go_cmd="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
    go_cmd=/usr/local/go/bin/go
else
    die "no Go toolchain found (install Go >= 1.24, or set GO=/path/to/go)"
fi

# No VCS stamping: tools/ferretdb sits inside SEV's git checkout, and the
# stamp is useless here (and fails on checkouts git considers unsafe).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

mkdir -p "$bin_dir"

# One build at a time per cache dir (two test runs starting together).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$tools_dir/.build.lock"
    flock 9
fi

go_version="$("$go_cmd" env GOVERSION)" || die "'$go_cmd env GOVERSION' failed"
log "using $go_cmd ($go_version), cache dir $bin_dir"

# up_to_date NAME STAMP: the binary exists and was built from STAMP.
up_to_date() {
    [[ "${SEV_TOOLS_FORCE:-}" != 1 ]] &&
        [[ -x "$bin_dir/$1" ]] &&
        [[ -f "$bin_dir/.$1.stamp" ]] &&
        [[ "$(cat "$bin_dir/.$1.stamp")" == "$2" ]]
}

# install_built NAME BUILT_FILE STAMP: move a fresh binary in place, then write its stamp.
install_built() {
    [[ -x "$2" ]] || die "$1: build produced no binary at $2"
    rm -f "$bin_dir/.$1.stamp"
    mv -f "$2" "$bin_dir/$1"
    printf '%s\n' "$3" >"$bin_dir/.$1.stamp"
}

failed=()
fail() { log "ERROR: $1: $2"; failed+=("$1"); }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- ferretdb-sev -----------------------------------------------------------
build_ferretdb() {
    local src="$repo_root/tools/ferretdb" src_hash stamp start
    grep -q "github.com/FerretDB/FerretDB $FERRETDB_VERSION\$" "$src/go.mod" || {
        fail ferretdb-sev "tools/ferretdb/go.mod does not require FerretDB $FERRETDB_VERSION"
        return
    }
    src_hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -d' ' -f1)"
    stamp="ferretdb $FERRETDB_VERSION $go_version src-sha256=$src_hash"
    if up_to_date ferretdb-sev "$stamp"; then
        log "ferretdb-sev: up to date (FerretDB $FERRETDB_VERSION)"
        return
    fi
    log "ferretdb-sev: building FerretDB $FERRETDB_VERSION (pure Go SQLite; 1.5-2 min when cold)"
    start=$SECONDS
    # -mod=readonly: build exactly what go.mod/go.sum pin, never rewrite them.
    if (cd "$src" && CGO_ENABLED=0 "$go_cmd" build -mod=readonly -trimpath \
        -o "$work/ferretdb-sev" .); then
        install_built ferretdb-sev "$work/ferretdb-sev" "$stamp"
        log "ferretdb-sev: built in $((SECONDS - start)) s"
    else
        fail ferretdb-sev "go build failed (see above)"
    fi
}

# --- twitch-cli -------------------------------------------------------------
build_twitch_cli() {
    local stamp="twitch-cli $TWITCH_CLI_VERSION $go_version" start
    if up_to_date twitch-cli "$stamp"; then
        log "twitch-cli: up to date ($TWITCH_CLI_VERSION)"
        return
    fi
    command -v "${CC:-gcc}" >/dev/null 2>&1 || {
        fail twitch-cli "it needs CGO: install gcc"
        return
    }
    log "twitch-cli: building $TWITCH_CLI_VERSION (CGO)"
    start=$SECONDS
    # Run outside SEV's tree so no go.mod/go.work of ours applies.
    if (cd "$work" && GOBIN="$work/gobin" CGO_ENABLED=1 \
        "$go_cmd" install -trimpath "github.com/twitchdev/twitch-cli@$TWITCH_CLI_VERSION"); then
        install_built twitch-cli "$work/gobin/twitch-cli" "$stamp"
        log "twitch-cli: built in $((SECONDS - start)) s"
    else
        fail twitch-cli "go install github.com/twitchdev/twitch-cli@$TWITCH_CLI_VERSION failed (see above)"
    fi
}

if [[ $want_ferretdb == 1 ]]; then build_ferretdb; fi
if [[ $want_twitch == 1 ]]; then build_twitch_cli; fi

# Where the binaries are (only those built or found up to date).
for tool in ferretdb-sev twitch-cli; do
    if [[ $tool == ferretdb-sev && $want_ferretdb == 1 || $tool == twitch-cli && $want_twitch == 1 ]] &&
        [[ ! " ${failed[*]} " == *" $tool "* ]]; then
        echo "$tool=$bin_dir/$tool"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    log "FAILED: ${failed[*]}"
    exit 1
fi
