#!/usr/bin/env bash
# Vendor the Socket.IO browser client (4.x, protocol v5) into static/: the page loads it from SEV
# itself, never from a CDN. Re-run to upgrade: SOCKETIO_CLIENT_VERSION=4.x.y scripts/vendor-socketio.sh
set -euo pipefail

version="${SOCKETIO_CLIENT_VERSION:-4.8.4}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack checks the tarball against the registry's integrity hash.
(cd "$work" && npm pack --silent "socket.io-client@${version}" >/dev/null)
tar -xzf "$work/socket.io-client-${version}.tgz" -C "$work"

min="$work/package/dist/socket.io.min.js"
head -n 3 "$min" | grep -q "Socket.IO v${version}" || {
  echo "unexpected header in socket.io.min.js" >&2
  exit 1
}
# The source map is not shipped: drop its trailing pointer so nothing asks SEV for it.
grep -v '^//# sourceMappingURL=' "$min" >"$root/static/socket.io.min.js"
cp "$work/package/LICENSE" "$root/static/socket.io.LICENSE.txt"
echo "static/socket.io.min.js: socket.io-client ${version}"
