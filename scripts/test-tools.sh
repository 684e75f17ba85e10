#!/usr/bin/env bash
# Installs the outside tools the tests drive the service with (tests/tools/):
# openapi-spec-validator, openapi-python-client and schemathesis from PyPI into
# target/test-tools/venv, and Redocly's CLI from npm into target/test-tools/node.
# Idempotent and safe to run from several tests at once: it does nothing when the
# installed set matches tests/tools/ (a stamp of their contents), and holds a lock
# while installing. Prints nothing on success unless it installed something.
# Needs python3 (with venv) and npm; reaches PyPI and the npm registry only.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=tests/tools
home=target/test-tools
mkdir -p "$home"
exec 9>"$home/.lock"
flock 9

stamp=$(cat "$tools/requirements.txt" "$tools/package.json" "$tools/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$home/.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

echo "test-tools: installing the tools of $tools into $home"
rm -rf "$home/venv" "$home/node"
python3 -m venv "$home/venv"
"$home/venv/bin/pip" install --quiet --disable-pip-version-check -r "$tools/requirements.txt"
mkdir -p "$home/node"
cp "$tools/package.json" "$tools/package-lock.json" "$home/node/"
(cd "$home/node" && npm ci --silent --no-audit --no-fund)
echo "$stamp" >"$home/.stamp"
echo "test-tools: ready"
