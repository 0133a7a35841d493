#!/usr/bin/env bash
# A real OpenID Connect provider on loopback for the single sign-on tests:
# panva's oidc-provider (npm, pinned in tools/oidc/package-lock.json),
# started by the tests themselves (tools/oidc/provider.mjs, see its README).
#
#   scripts/oidc.sh setup      install tools/oidc/node_modules (npm ci) when missing or stale
#   scripts/oidc.sh check      say whether it is installed; non-zero with the command to run if not
#   scripts/oidc.sh start ...  run the provider in the foreground (arguments go to provider.mjs;
#                              --ignore-stdin is added, and --redirect-uri defaults to
#                              http://127.0.0.1:8080/v1/sso/callback)
#   scripts/oidc.sh selftest   start one, log in through it with curl (authorize, login form,
#                              code, token with PKCE) and check the ID token's claims
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir="$root/tools/oidc"

log() { printf 'oidc.sh: %s\n' "$*" >&2; }

need_node() {
  command -v node >/dev/null || { log "node is missing: install Node.js 20 or newer"; exit 1; }
  command -v npm >/dev/null || { log "npm is missing: install Node.js 20 or newer"; exit 1; }
}

# True when node_modules matches the lockfile (npm writes
# node_modules/.package-lock.json on every install).
installed() {
  local marker="$dir/node_modules/.package-lock.json"
  [ -f "$marker" ] && [ -f "$dir/node_modules/oidc-provider/package.json" ] \
    && [ ! "$dir/package-lock.json" -nt "$marker" ] && [ ! "$dir/package.json" -nt "$marker" ]
}

cmd_setup() {
  need_node
  if ! installed; then
    log "installing oidc-provider (npm ci in tools/oidc)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

cmd_check() {
  if ! command -v node >/dev/null; then
    log "node is missing: install Node.js 20 or newer, then run scripts/oidc.sh setup"
    exit 1
  fi
  if ! installed; then
    log "oidc-provider is not installed (or older than tools/oidc/package-lock.json): run scripts/oidc.sh setup"
    exit 1
  fi
  local version
  version=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/oidc-provider/package.json")
  echo "oidc-provider $version is installed in tools/oidc/node_modules"
}

cmd_start() {
  cmd_setup
  local args=("$@") has_redirect=0 a
  for a in "${args[@]}"; do
    case "$a" in --redirect-uri|--redirect-uri=*) has_redirect=1 ;; esac
  done
  if [ "$has_redirect" -eq 0 ]; then args+=(--redirect-uri http://127.0.0.1:8080/v1/sso/callback); fi
  exec node "$dir/provider.mjs" --ignore-stdin "${args[@]}"
}

# The login a test performs, with curl and a cookie jar; see tools/oidc/README.md.
cmd_selftest() {
  cmd_setup
  command -v curl >/dev/null || { log "curl is missing"; exit 1; }
  command -v openssl >/dev/null || { log "openssl is missing"; exit 1; }
  local tmp pid issuer redirect=http://127.0.0.1:9/v1/sso/callback
  tmp=$(mktemp -d)
  # The provider exits when its stdin (this fifo's writer, held open by
  # fd 7 below) closes, i.e. when this script ends however it ends.
  mkfifo "$tmp/stdin"
  node "$dir/provider.mjs" --port 0 --redirect-uri "$redirect" --id-token-ttl 600 \
    <"$tmp/stdin" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  exec 7>"$tmp/stdin"
  trap 'exec 7>&-; kill '"$pid"' 2>/dev/null || true; wait '"$pid"' 2>/dev/null || true; rm -rf '"$tmp" EXIT
  for _ in $(seq 100); do
    [ -s "$tmp/out" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/err" >&2; log "provider exited"; exit 1; }
    sleep 0.05
  done
  issuer=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).issuer' "$tmp/out")
  log "issuer $issuer"

  local verifier challenge jar="$tmp/jar" loc code body
  verifier=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
  challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
  # Location header of a response, resolved against the issuer.
  location() {
    local l
    l=$(sed -n 's/^[Ll]ocation: *//p' "$1" | tr -d '\r')
    case "$l" in /*) l="$issuer$l" ;; esac
    printf %s "$l"
  }
  expect() { grep -q "^HTTP/1.1 $2" "$1" || { log "expected $2 from $3:"; cat "$1" "$tmp/err" >&2; exit 1; }; }

  curl -sS -o /dev/null -D "$tmp/h1" -c "$jar" -b "$jar" -G "$issuer/auth" \
    --data-urlencode client_id=hark --data-urlencode response_type=code \
    --data-urlencode 'scope=openid profile email' --data-urlencode "redirect_uri=$redirect" \
    --data-urlencode state=s --data-urlencode nonce=n \
    --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256
  expect "$tmp/h1" 303 "GET /auth"
  loc=$(location "$tmp/h1")
  log "1. GET /auth -> 303 $loc"

  curl -sS -o "$tmp/form" -D "$tmp/h2" -c "$jar" -b "$jar" "$loc"
  expect "$tmp/h2" 200 "GET the interaction"
  grep -q 'name="login"' "$tmp/form" || { log "no login form"; exit 1; }
  log "2. GET $loc -> 200 (login form)"

  curl -sS -o /dev/null -D "$tmp/h3" -c "$jar" -b "$jar" "$loc" \
    --data-urlencode prompt=login --data-urlencode login=alice --data-urlencode password=anything
  expect "$tmp/h3" 303 "POST the login form"
  loc=$(location "$tmp/h3")
  log "3. POST login=alice -> 303 $loc"

  curl -sS -o /dev/null -D "$tmp/h4" -c "$jar" -b "$jar" "$loc"
  expect "$tmp/h4" 303 "GET the resume URL"
  loc=$(location "$tmp/h4")
  log "4. GET resume -> 303 $(printf %s "$loc" | sed "s/code=[^&]*/code=…/")"
  case "$loc" in "$redirect?"*) ;; *) log "not redirected to $redirect"; exit 1 ;; esac
  code=$(printf %s "$loc" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
  [ -n "$code" ] && printf %s "$loc" | grep -q '[?&]state=s\(&\|$\)' || { log "no code or state"; exit 1; }

  body=$(curl -sS -u hark:hark-secret "$issuer/token" \
    --data-urlencode grant_type=authorization_code --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=$redirect" --data-urlencode "code_verifier=$verifier")
  log "5. POST /token -> $(printf %s "$body" | sed 's/"\(access_token\|id_token\)":"[^"]*"/"\1":"…"/g')"
  ISSUER="$issuer" node -e '
    const tok = JSON.parse(process.argv[1]);
    const p = JSON.parse(Buffer.from(tok.id_token.split(".")[1], "base64url"));
    const want = { iss: process.env.ISSUER, aud: "hark", nonce: "n", sub: "alice",
      preferred_username: "alice", name: "Alice", email: "alice@example.test", email_verified: true };
    for (const [k, v] of Object.entries(want)) {
      if (p[k] !== v) { console.error(`id_token ${k} = ${JSON.stringify(p[k])}, want ${JSON.stringify(v)}`); process.exit(1); }
    }
    if (p.exp - p.iat !== 600) { console.error(`id_token lives ${p.exp - p.iat}s, want 600`); process.exit(1); }
    console.error("oidc.sh: id_token " + JSON.stringify(p));
  ' "$body"
  log "ok"
}

case "${1:-}" in
  setup) shift; cmd_setup "$@" ;;
  check) shift; cmd_check "$@" ;;
  start) shift; cmd_start "$@" ;;
  selftest) shift; cmd_selftest "$@" ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
