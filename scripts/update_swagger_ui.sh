#!/usr/bin/env bash
# Refetch the Swagger UI assets that `GET /docs` serves (api/static/swagger-ui/) from the npm
# registry: the browser bundle, its stylesheet, an icon, and the licence files that must ship
# with them. Usage: scripts/update_swagger_ui.sh [VERSION]   (default: the latest release)
# Then run `pytest tests/api/test_openapi.py` and look at /docs once.
set -euo pipefail

version="${1:-latest}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo/api/static/swagger-ui"
files=(swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png
       LICENSE NOTICE)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# npm pack checks the tarball against the registry's integrity hash.
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null)
tar -xzf "$work"/swagger-ui-dist-*.tgz -C "$work"

mkdir -p "$dest"
find "$dest" -mindepth 1 -delete
for name in "${files[@]}"; do
    install -m 0644 "$work/package/$name" "$dest/$name"
done
# Kept byte for byte as published (source maps are left out: only developer tools ask for them).
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$work/package/package.json" > "$dest/VERSION"
echo "swagger-ui-dist $(cat "$dest/VERSION") -> $dest"
