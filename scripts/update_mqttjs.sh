#!/usr/bin/env bash
# Vendor MQTT.js for the web client: fetch the `mqtt` package from the npm registry with
# `npm pack` (no install, no node_modules), and copy its browser bundle and its licence into
# api/webapp/vendor/. Usage: scripts/update_mqttjs.sh [VERSION]   (default: latest)
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-latest}"
vendor=api/webapp/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(cd "$work" && npm pack --silent "mqtt@$version")
tar -xzf "$work/$tarball" -C "$work"
resolved=$(node -p 'require(process.argv[1]).version' "$work/package/package.json")

mkdir -p "$vendor"
cp "$work/package/dist/mqtt.min.js" "$vendor/mqtt.min.js"
cp "$work/package/LICENSE.md" "$vendor/mqtt.LICENSE.md"
printf '%s\n' "$resolved" > "$vendor/mqtt.VERSION"
echo "vendored MQTT.js $resolved into $vendor (mqtt.min.js, mqtt.LICENSE.md, mqtt.VERSION)"
