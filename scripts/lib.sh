# Shared by scripts/demo, scripts/test and .ci/run: pinned tool versions, installing what is
# missing, and starting the local AWS emulator. Source it; it does nothing on its own.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO_LEPTOS_VERSION=0.3.10      # 0.3.11 needs rustc 1.96
WASM_BINDGEN_VERSION=0.2.130     # must equal the wasm-bindgen pin in Cargo.toml
CFN_LINT_VERSION=1.58.0
OPENAPI_VALIDATOR_VERSION=0.7.1
MOTO_VERSION=5.2.1
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  if ! cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION"; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes on 2 cores, once)"
    # A build tool need not be fast: no LTO, more codegen units, light optimisation (21 → 15 min).
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
      cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
}

# wasm-opt from npm's binaryen (cargo-leptos would otherwise download it from GitHub), and the
# demo's identity provider (npm's oidc-provider), both pinned in package.json.
ensure_node_tools() {
  if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] || [ ! -d "$ROOT/node_modules/oidc-provider" ]; then
    say "installing tools from npm (binaryen, oidc-provider)"
    (cd "$ROOT" && npm ci --no-audit --no-fund)
  fi
}

ensure_moto() {
  local venv="$ROOT/.venv"
  if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    say "installing moto $MOTO_VERSION in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  # The local AWS the demo and the tests talk to: moto with a CloudFormation as strict as AWS
  # (demo/local_aws/; it takes moto_server's flags).
  export MOTO_SERVER="$ROOT/scripts/local-aws"
  PYTHON="$venv/bin/python"
  export LOCAL_AWS_PYTHON="$PYTHON"
}

# PostgreSQL from Debian (apt), installed when missing.
ensure_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "installing postgresql (apt)"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null ||
      { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null; }
  fi
}

# rust_tests <minutes> [env…]: the Rust tests (the one selection every pass uses), ended after
# <minutes> with a clear word: a test that hangs fails the run instead of holding it until CI's
# own limit (libtest names it above: "has been running for over 60 seconds").
rust_tests() {
  local minutes=$1 rc=0
  shift
  env "$@" timeout --kill-after=30s "${minutes}m" cargo test --locked -p deployer -p app -p deployctl -p deployer-wire || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "the Rust tests ran past ${minutes} minutes: a test hangs (named above as running for over 60 seconds)" >&2
  fi
  return "$rc"
}

# start_postgres <port> <dir> <log>: a throwaway PostgreSQL (Debian's postgresql package) in
# <dir>, on 127.0.0.1:<port>, trusting local connections, superuser "deployer"; sets
# POSTGRES_URL (its "postgres" database) and POSTGRES_DIR. PostgreSQL refuses to run as root: as
# root it runs as the package's "postgres" user. stop_postgres stops it.
start_postgres() {
  local port=$1 dir=$2 log=$3 bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
  local as=()
  if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
  rm -rf "$dir" && mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U deployer --auth=trust --encoding=UTF8 --no-sync >"$log" 2>&1
  # A throwaway server: no fsync, and little WAL kept (each test's database is a copy of the
  # template, written to the WAL too: 480 MB of it in a run otherwise).
  local settings="-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400"
  settings+=" -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=64MB -c min_wal_size=32MB"
  # TLS as RDS serves it: a certificate for 127.0.0.1 signed by a CA of the run's own
  # (POSTGRES_TLS_CA), so the store's `sslmode=verify-full` is tested against a real server.
  # Plain connections stay allowed, as on RDS without rds.force_ssl.
  POSTGRES_TLS_CA=""
  if command -v openssl >/dev/null 2>&1; then
    local tls="$dir/tls"
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=deployer test CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" >>"$log" 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" \
      -out "$tls/server.csr" >>"$log" 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
      -days 2 -extfile "$tls/san.ext" -out "$tls/server.pem" >>"$log" 2>&1
    chmod 600 "$tls/server.key"
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$tls"
    settings+=" -c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/server.key"
    POSTGRES_TLS_CA="$tls/ca.pem"
  fi
  if ! "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir $settings" start >>"$log" 2>&1; then
    echo "PostgreSQL could not start on 127.0.0.1:$port:" >&2
    cat "$log" "$dir/server.log" >&2 2>/dev/null
    return 1
  fi
  POSTGRES_URL="postgres://deployer@127.0.0.1:$port/postgres"
  export POSTGRES_TLS_CA
  POSTGRES_DIR=$dir
  POSTGRES_BIN=$bin
}

stop_postgres() {
  [ -n "${POSTGRES_DIR:-}" ] || return 0
  local as=()
  if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
  "${as[@]}" "$POSTGRES_BIN/pg_ctl" -D "$POSTGRES_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

# cfn-lint (PyPI, pinned) in the same virtualenv: every CloudFormation template is linted.
ensure_cfn_lint() {
  local venv="$ROOT/.venv"
  if ! "$venv/bin/cfn-lint" --version 2>/dev/null | grep -qx "cfn-lint $CFN_LINT_VERSION"; then
    say "installing cfn-lint $CFN_LINT_VERSION in $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  fi
  CFN_LINT="$venv/bin/cfn-lint"
}

# The repository's infrastructure as code: CloudFormation templates through cfn-lint, the Packer
# template through Debian's packer (1.6: syntax only), the image's boot script through sh -n.
lint_infrastructure() {
  ensure_cfn_lint
  say "linting the CloudFormation templates (cfn-lint $CFN_LINT_VERSION)"
  "$CFN_LINT" "$ROOT"/infra/*.yaml "$ROOT"/seed/templates/*.yaml
  if command -v packer >/dev/null 2>&1; then
    say "checking the Packer template ($(packer version | head -1), syntax only)"
    packer validate -syntax-only "$ROOT/infra/packer/deployer.pkr.hcl"
  else
    say "NOT checking infra/packer/deployer.pkr.hcl: packer is not installed (apt-get install packer; .ci/run does)"
  fi
  sh -n "$ROOT/infra/packer/deployer-boot"
}

# The API's OpenAPI document (from the server binary the tests built) checked against the
# OpenAPI 3.1 schema by openapi-spec-validator (PyPI, pinned, same virtualenv).
check_openapi() {
  local venv="$ROOT/.venv"
  if ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -qx "Version: $OPENAPI_VALIDATOR_VERSION"; then
    say "installing openapi-spec-validator $OPENAPI_VALIDATOR_VERSION in $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
  fi
  say "checking the OpenAPI document (openapi-spec-validator $OPENAPI_VALIDATOR_VERSION)"
  "$ROOT/target/debug/deployer" --openapi >"$ROOT/target/openapi.json"
  "$venv/bin/openapi-spec-validator" "$ROOT/target/openapi.json"
}

build_site() {
  say "building the deployer (cargo leptos build --release --split --precompress)"
  (cd "$ROOT" && cargo leptos build --release --split --precompress)
  regzip_site
}

# Only the browser's part (wasm, JS, CSS) into target/site: the tests run the server `cargo test`
# built (target/debug/deployer; .cargo/config.toml gives it the bundle's name).
build_frontend() {
  say "building the page's wasm (cargo leptos build --release --split --precompress --frontend-only)"
  (cd "$ROOT" && cargo leptos build --release --split --precompress --frontend-only)
  regzip_site
}

# cargo-leptos's gzip copies are made at a fast level; browsers without brotli get gzip -9's.
regzip_site() {
  local f
  for f in "$ROOT"/target/site/pkg/*.wasm "$ROOT"/target/site/pkg/*.js "$ROOT"/target/site/pkg/*.css; do
    gzip -9 -n -c "$f" >"$f.gz"
  done
}

# A port free now and below the kernel's ephemeral range, so that no outgoing connection takes it
# before the server it is for binds it (a port the kernel handed out, closed, then bound minutes
# later was once taken meanwhile: the drill's proxy, EADDRINUSE).
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(max(1024, low - 12000), low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
PY
}

wait_for_http() { # url seconds
  local deadline=$((SECONDS + ${2:-60}))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if ((SECONDS > deadline)); then echo "timed out waiting for $1" >&2; return 1; fi
    sleep 0.2
  done
}

# wait_started <pid> <url> <log> <what>: until the url answers; a clear error (with the log)
# when the process died first, e.g. because its port was taken.
wait_started() {
  local deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "$2" 2>/dev/null; do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "$4 could not start ($2):" >&2
      cat "$3" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then echo "timed out waiting for $4 at $2" >&2; return 1; fi
    sleep 0.2
  done
}

# start_moto <port> <log>: the local AWS (moto behind demo/local_aws/, at the pace LOCAL_AWS_PACE
# gives, in seconds a resource step); sets MOTO_PID. Ready when *this* one says it is serving (a
# probe of the port could reach another program holding it); a clear error when the port is taken.
start_moto() {
  "$MOTO_SERVER" -H 127.0.0.1 -p "$1" >"$2" 2>&1 &
  MOTO_PID=$!
  local deadline=$((SECONDS + 60))
  until grep -q "Running on" "$2" 2>/dev/null; do
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto could not start on 127.0.0.1:$1:" >&2
      cat "$2" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then echo "timed out waiting for moto on port $1" >&2; return 1; fi
    sleep 0.2
  done
  wait_for_http "http://127.0.0.1:$1/moto-api/" 60
}

# set_pace <port> <seconds>: how long each resource step of a stack operation takes in the local
# AWS on <port> from now on.
set_pace() {
  curl -fsS -X POST "http://127.0.0.1:$1/_local/pace" -H 'content-type: application/json' \
    -d "{\"seconds\": $2}" >/dev/null
}

# demo_config <moto port> <out> <store> <oidc port> <jenkins port>: the demo config pointed at a
# moto, an identity provider and a stand-in Jenkins on those ports, with its own (fresh)
# deployments store: the emulator starts empty, so must the history.
demo_config() {
  rm -f "$3" "$3-wal" "$3-shm"
  { echo "store = \"$3\""; sed -e "s#http://127.0.0.1:5055#http://127.0.0.1:$1#g" \
      -e "s#http://127.0.0.1:5056#http://127.0.0.1:$4#g" \
      -e "s#http://127.0.0.1:5057#http://127.0.0.1:$5#g" "$ROOT/config/demo.toml"; } >"$2"
}

# start_jenkins <port> <config> <log> [args]: the stand-in Jenkins (demo/jenkins/) against the
# emulator the config names; sets JENKINS_PID. Its API token is DEPLOYER_JENKINS_TOKEN.
start_jenkins() {
  local port=$1 config=$2 log=$3
  shift 3
  JENKINS_TOKEN="$DEPLOYER_JENKINS_TOKEN" "$PYTHON" "$ROOT/demo/jenkins/stand_in_jenkins.py" "$config" \
    --port "$port" --token-env JENKINS_TOKEN "$@" >"$log" 2>&1 &
  JENKINS_PID=$!
  wait_started "$JENKINS_PID" "http://127.0.0.1:$port/stand-in/state" "$log" "the stand-in Jenkins"
}

# A random secret (for the demo's client secret and bootstrap token).
random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

# start_oidc <port> <deployer url[,url…]> <log>: the local identity provider
# (demo/oidc-provider.mjs) with its client's redirect to those deployers; sets OIDC_PID. Needs
# DEPLOYER_OIDC_CLIENT_SECRET.
start_oidc() {
  local redirects
  redirects=$(echo "$2" | sed -e 's#,#/auth/callback,#g' -e 's#$#/auth/callback#')
  OIDC_PORT="$1" OIDC_REDIRECT_URIS="$redirects" OIDC_CLIENT_SECRET="$DEPLOYER_OIDC_CLIENT_SECRET" \
    node "$ROOT/demo/oidc-provider.mjs" >"$3" 2>&1 &
  OIDC_PID=$!
  wait_started "$OIDC_PID" "http://127.0.0.1:$1/.well-known/openid-configuration" "$3" "the identity provider"
}

# make_token <deployer url> <name> <role>: a new API token, made with the bootstrap token.
make_token() {
  curl -fsS -X POST "$1/api/v1/tokens" -H "authorization: Bearer $DEPLOYER_BOOTSTRAP_TOKEN" \
    -H 'content-type: application/json' -d "{\"name\": \"$2\", \"role\": \"$3\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# Static keys for the emulator; each environment then assumes its role into its own account.
emulator_credentials() {
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
