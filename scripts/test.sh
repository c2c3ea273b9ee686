#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned Python test tools into .venv,
# lints the SAM template, then runs every Rust test (unit, end-to-end through the Runtime API
# host, AWS CLI wire tests). Fails loudly when a tool cannot be installed; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Python test tools (tests/requirements.txt)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 1; }
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
export AWS_CLI="$PWD/.venv/bin/aws"
export MOTO_SERVER="$PWD/.venv/bin/moto_server"
aws --version

step "cfn-lint template.yaml"
cfn-lint template.yaml

step "cargo test"
cargo test --workspace --locked
