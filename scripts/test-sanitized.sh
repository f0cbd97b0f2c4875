#!/usr/bin/env bash
# Runs the tests built in ./build-sanitize (scripts/build.sh --sanitize) with the sanitizers'
# runtime options: any ASan, LSan or UBSan report fails the test it happens in. Runs what was
# built: test_core alone after `scripts/build.sh --sanitize --target test_core` (what CI
# does), the whole CTest suite after a full sanitized build. Extra arguments go to the runner.
set -euo pipefail
cd "$(dirname "$0")/.."
supp="$PWD/tests/sanitizers"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
if [[ -x build-sanitize/bin/test_torch ]]; then
  ctest --test-dir build-sanitize --output-on-failure --timeout 1800 "$@"
else
  build-sanitize/bin/test_core "$@"
fi
