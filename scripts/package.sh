#!/usr/bin/env bash
# Builds every function the way the README tells users to, `cargo lambda build --release
# --arm64`, in one shared target directory, then prints per function the size of the zip Lambda
# receives (`target/lambda/<function>/bootstrap.zip`) against the 4 MB goal, and how long the
# build took. Installs its pinned tools (cargo-lambda, and zig for cross-compiling) into
# .venv-package and the aarch64 Rust target when missing.
#
# Usage: scripts/package.sh [--x86-64]    (x86_64 instead of arm64)
set -euo pipefail
cd "$(dirname "$0")/.."

arch_flag=--arm64
target=aarch64-unknown-linux-gnu
if [ "${1:-}" = "--x86-64" ]; then
  arch_flag=--x86-64
  target=x86_64-unknown-linux-gnu
fi

if [ ! -x .venv-package/bin/python ]; then
  python3 -m venv .venv-package || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 1; }
fi
.venv-package/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-package.txt
export PATH="$PWD/.venv-package/bin:$PATH"
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi

functions=(artifact-processor migration-runner deploy-gate approval-notifier approval-responder pipeline-notifier)

# One function at a time, as SAM's rust-cargolambda build method runs it (`--bin NAME` from the
# workspace root): the same dependency features, so this and `sam build` share target/.
warmth=cold
if [ -d "target/$target/release/deps" ]; then warmth="warm target/"; fi
declare -A took
total=0
for f in "${functions[@]}"; do
  started=$(date +%s)
  cargo lambda build --release "$arch_flag" --output-format zip --bin "$f"
  took[$f]=$(( $(date +%s) - started ))
  total=$(( total + took[$f] ))
done

limit=4000000
over=0
printf '\n%-20s %12s %10s %8s %8s\n' function "zip bytes" "zip MB" "≤ 4 MB" "build s"
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  [ -f "$zip" ] || { echo "error: $zip was not built" >&2; exit 1; }
  bytes=$(stat -c %s "$zip")
  verdict=yes
  if [ "$bytes" -gt "$limit" ]; then verdict=NO; over=$((over + 1)); fi
  printf '%-20s %12d %10.2f %8s %8d\n' "$f" "$bytes" "$(awk "BEGIN { print $bytes / 1000000 }")" "$verdict" "${took[$f]}"
done
printf '\n%s release build of %d functions: %d s on %d cores (%s)\n' "$target" "${#functions[@]}" "$total" "$(nproc)" "$warmth"
if [ "$over" -gt 0 ]; then
  echo "$over function(s) above 4 MB zipped" >&2
fi
