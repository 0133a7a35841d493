#!/usr/bin/env bash
# Fuzzing (issue #16): the cargo-fuzz targets in fuzz/, one for every parser
# that reads a client's bytes (fuzz/fuzz_targets/*.rs say which).
#
#   scripts/fuzz.sh list                     the targets
#   scripts/fuzz.sh smoke [seconds]          build them all, run each for a few
#                                            seconds (default 10) from its seed
#                                            corpus; the test suite runs this
#   scripts/fuzz.sh run <target> [seconds]   a long run (default: until stopped)
#
# A crash fails the run and leaves its input in fuzz/artifacts/<target>/.
# Each one becomes a fix, a unit test with its bytes in the crate that owns
# the parser, and a file in the seed corpus fuzz/corpus/<target>/ (named
# regression-…), so every later smoke replays it.
#
# Builds use the nightly toolchain (`cargo +nightly fuzz`) into fuzz/target;
# cargo-fuzz is installed from crates.io when missing.
#
# Builds, measured from a clean fuzz/target on this 2-core machine (while
# another build ran beside them, so the ratios are what count):
#   --dev, no sanitizer          2 min 15 s   (2 min 37 s in a full smoke)
#   --dev, AddressSanitizer      3 min 48 s
#   --dev with opt-level 1       6 min 45 s   (against 3 min 3 s at 0)
#   release, no sanitizer        6 min 10 s   (cargo-fuzz's one codegen unit)
#   release, AddressSanitizer    6 min 15 s
# - smoke: `--dev --sanitizer none`. The parsers are safe Rust, so bounds
#   and a dev build's overflow checks find there what ASan would; ASan adds
#   checks only inside the image decoders' unsafe code, which the long runs
#   cover. A smoke is the build plus 10 s a target: under 4 minutes.
# - run: release with AddressSanitizer (cargo-fuzz's default), built once;
#   5 to 10 times the executions a second of the dev build.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_dir=fuzz
targets() { sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v '^hark-fuzz$'; }

ensure_cargo_fuzz() {
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: installing cargo-fuzz (crates.io)" >&2
    cargo install cargo-fuzz --locked
  fi
}

# Where cargo-fuzz puts a target's binary (the host's triple, its default).
binary() {
  local profile=$1 target=$2 triple
  triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
  echo "$fuzz_dir/target/$triple/$profile/$target"
}

# Runs the fuzzer binary $1 on the corpus directories that follow (new
# inputs go to the first) with libFuzzer's options $FUZZ_OPTS; on a crash,
# names its input.
fuzz_once() {
  local name=$1 bin=$2
  shift 2
  local artifacts="$fuzz_dir/artifacts/$name"
  mkdir -p "$artifacts"
  local before
  before=$(ls "$artifacts")
  # shellcheck disable=SC2086 # FUZZ_OPTS is a list of options
  if "$bin" $FUZZ_OPTS -artifact_prefix="$artifacts/" "$@"; then
    return 0
  fi
  echo "scripts/fuzz.sh: $name FAILED; its input:" >&2
  comm -13 <(echo "$before") <(ls "$artifacts") | sed "s|^|  $artifacts/|" >&2
  echo "  reproduce: $bin <that file>" >&2
  return 1
}

case "${1:-}" in
  list)
    targets
    ;;
  smoke)
    seconds=${2:-10}
    ensure_cargo_fuzz
    start=$(date +%s)
    (cd "$fuzz_dir" && cargo +nightly fuzz build --dev --sanitizer none)
    echo "scripts/fuzz.sh: built in $(($(date +%s) - start)) s" >&2
    failed=()
    for t in $(targets); do
      # A copy of the seed corpus: what the run finds does not grow the repo.
      corpus=$(mktemp -d)
      cp -r "$fuzz_dir/corpus/$t/." "$corpus/"
      echo "scripts/fuzz.sh: $t for $seconds s" >&2
      FUZZ_OPTS="-max_total_time=$seconds -timeout=10 -rss_limit_mb=2048 -print_final_stats=1" \
        fuzz_once "$t" "$(binary debug "$t")" "$corpus" 2>"$corpus.log" || {
          tail -60 "$corpus.log" >&2
          failed+=("$t")
        }
      grep -E '^(stat::number_of_executed_units|Done)' "$corpus.log" | sed "s/^/  /" >&2 || true
      rm -rf "$corpus" "$corpus.log"
    done
    echo "scripts/fuzz.sh: smoke took $(($(date +%s) - start)) s" >&2
    if [ ${#failed[@]} -ne 0 ]; then
      echo "scripts/fuzz.sh: crashes in: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  run)
    target=${2:?usage: scripts/fuzz.sh run <target> [seconds]}
    seconds=${3:-0}
    targets | grep -qx "$target" || { echo "no fuzz target $target (scripts/fuzz.sh list)" >&2; exit 2; }
    ensure_cargo_fuzz
    (cd "$fuzz_dir" && cargo +nightly fuzz build -O --sanitizer address "$target")
    # What long runs find stays in fuzz/target/corpus (not committed); the
    # seeds are read from fuzz/corpus.
    corpus="$fuzz_dir/target/corpus/$target"
    mkdir -p "$corpus"
    FUZZ_OPTS="-max_total_time=$seconds -timeout=10 -rss_limit_mb=2048 -print_final_stats=1" \
      fuzz_once "$target" "$(binary release "$target")" "$corpus" "$fuzz_dir/corpus/$target"
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
