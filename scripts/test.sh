#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned Python test tools into .venv,
# lints the SAM template, checks formatting, clippy, rustdoc and unused dependencies with
# warnings denied, then runs every Rust test (unit, end-to-end through the Runtime API
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

step "PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306)"
# migration-runner's tests use the real servers; start them when installed but stopped.
wait_for() { # name, check command
  for _ in $(seq 1 60); do
    if eval "$2" >/dev/null 2>&1; then echo "$1 is up"; return 0; fi
    sleep 0.5
  done
  echo "error: $1 is not answering; see the README's Testing section" >&2
  exit 1
}
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  command -v pg_ctlcluster >/dev/null || { echo "error: PostgreSQL is not running and not installed (apt-get install postgresql)" >&2; exit 1; }
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
wait_for PostgreSQL "pg_isready -h 127.0.0.1 -p 5432"
if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  [ -x /usr/sbin/mariadbd ] || { echo "error: MariaDB is not running and not installed (apt-get install mariadb-server)" >&2; exit 1; }
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for MariaDB "mariadb-admin -h 127.0.0.1 -u root ping"

step "Chromium for the console's browser tests (Debian's package)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  export DEBIAN_FRONTEND=noninteractive
  $apt_get install -y -q chromium || { $apt_get update -q && $apt_get install -y -q chromium; } \
    || { echo "error: cannot install chromium (apt-get install chromium); the console tests need it" >&2; exit 1; }
fi
chromium --version

step "SAM CLI (tests/requirements-sam.txt, its own venv)"
if [ ! -x .venv-sam/bin/python ]; then
  python3 -m venv .venv-sam || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 1; }
fi
.venv-sam/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements-sam.txt

step "template.yaml and templates/target-account-role.yaml: cfn-lint and sam validate --lint"
cfn-lint template.yaml templates/target-account-role.yaml
SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint --template template.yaml
SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint --template templates/target-account-role.yaml

step "template.yaml: checkov (tests/requirements-checkov.txt, its own venv)"
if [ ! -x .venv-checkov/bin/python ]; then
  python3 -m venv .venv-checkov || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 1; }
fi
.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements-checkov.txt
# Zero failed checks; a check skipped in the template must say why (a comment on each skip).
.venv-checkov/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
.venv-checkov/bin/checkov --file templates/target-account-role.yaml --framework cloudformation --compact --quiet --skip-download
unexplained=$(awk '/- id: CKV_/ { id = $0; getline; if ($0 !~ /comment: "[^"]{20,}/) print id }' template.yaml)
if [ -n "$unexplained" ]; then
  echo "error: checkov skips without a reason in template.yaml:" >&2
  echo "$unexplained" >&2
  exit 1
fi

# The Serverless Application Repository version follows the workspace's.
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
sar_version=$(sed -n 's/^ *SemanticVersion: *//p' template.yaml | head -n1)
if [ "$crate_version" != "$sar_version" ]; then
  echo "error: template.yaml SemanticVersion ($sar_version) is not the workspace version ($crate_version)" >&2
  exit 1
fi

step "Lint and doc gates: rustfmt, clippy, rustdoc, unused dependencies"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# What `cargo lambda build` and `sam build` compile for Lambda: migration-runner without its
# default `sqlite` feature ([package.metadata.lambda.build] in its Cargo.toml).
cargo clippy -p migration-runner --no-default-features --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --locked
python3 scripts/doc_ratio.py
# cargo-machete reads the sources (no network, no build); pinned so every machine checks alike.
if ! cargo machete --version 2>/dev/null | grep -q "0.9.2"; then
  cargo install cargo-machete --locked --version 0.9.2 || { echo "error: cannot install cargo-machete" >&2; exit 1; }
fi
cargo machete
# One TLS stack (shared/src/https.rs): a dependency that brings aws-lc or a compiled-in root
# bundle back adds 0.6 MB to every package and, with aws-lc, its entropy cost to cold starts.
for crate in aws-lc-sys aws-lc-rs webpki-roots; do
  if cargo tree --workspace --locked --target all -e normal -i "$crate" >/dev/null 2>&1; then
    echo "error: $crate is back in the dependency tree (cargo tree -i $crate says through what); see shared/src/https.rs" >&2
    exit 1
  fi
done

step "cargo build (every function binary)"
# End-to-end tests start other packages' binaries (target/debug/<function>), which `cargo test`
# only builds for the package under test, so build them all first.
cargo build --workspace --bins --locked

step "cargo test"
cargo test --workspace --locked --no-fail-fast

step "console in the browser (tests/console: Playwright on Debian's Chromium)"
# Screenshots land in target/console-screenshots/.
CHROMIUM="$(command -v chromium)" .venv/bin/python -m pytest -q tests/console
