#!/usr/bin/env bash
# The OHIF Viewer for tests/integration/test_viewer_ohif.py: the built viewer (dist/) of the
# npm package @ohif/app, fetched with npm's own client and checked against the integrity
# pinned here, unpacked where npm would put it (tests/viewer/node_modules/@ohif/app).
#
# Not `npm ci`: @ohif/app lists its build-time dependencies as runtime ones, and some of
# those (@ohif/i18n@3.13.2) are not on the registry, so npm cannot resolve the package's
# tree; the built viewer in dist/ needs none of them.
set -euo pipefail
cd "$(dirname "$0")"

SPEC="@ohif/app@3.13.2"
INTEGRITY="sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
TARGET="node_modules/@ohif/app"
STAMP="node_modules/.installed"

if ! command -v npm >/dev/null 2>&1; then
    if [[ -n "${CI:-}" ]]; then
        echo "npm is not installed: the OHIF viewer test needs it" >&2
        exit 1
    fi
    echo "npm is not installed: skipping the OHIF viewer (its test will skip)" >&2
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm pack --silent --json --pack-destination "$work" "$SPEC" >"$work/pack.json"
got="$(node -p 'require(process.argv[1])[0].integrity' "$work/pack.json")"
file="$(node -p 'require(process.argv[1])[0].filename' "$work/pack.json")"
if [[ "$got" != "$INTEGRITY" ]]; then
    echo "$SPEC: integrity $got, pinned $INTEGRITY" >&2
    exit 1
fi
rm -rf "$TARGET" "$STAMP"
mkdir -p "$TARGET"
tar -xzf "$work/$file" -C "$TARGET" --strip-components=1
test -f "$TARGET/dist/index.html"
touch "$STAMP"
