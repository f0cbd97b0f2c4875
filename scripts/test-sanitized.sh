#!/usr/bin/env bash
# Runs the tests built in ./build-sanitize (scripts/build.sh --sanitize) with the sanitizers'
# runtime options: any ASan, LSan or UBSan report fails the test it happens in. Runs what was
# built: after `scripts/build.sh --sanitize --target test_core --target chestlab_fuzz` (what
# CI does), test_core and a fuzz campaign of the in-process readers; after a full sanitized
# build, the whole CTest suite. Extra arguments go to test_core or ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
supp="$PWD/tests/sanitizers"
# allocator_may_return_null + max_allocation_size_mb: a hostile length in a file makes an
# allocation fail (std::bad_alloc, which the readers turn into a data error) as it does
# without ASan, instead of ASan aborting the process.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1:max_allocation_size_mb=4096"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
if [[ -x build-sanitize/bin/test_torch ]]; then
  ctest --test-dir build-sanitize --output-on-failure --timeout 1800 "$@"
  exit
fi
build-sanitize/bin/test_core "$@"
if [[ -x build-sanitize/bin/chestlab_fuzz ]]; then
  # Every in-process reader; the run-file-by-CLI target needs the (LibTorch) program.
  build-sanitize/bin/chestlab_fuzz --target all --no-cli --iterations "${CHESTLAB_SANITIZED_FUZZ_ITERATIONS:-200}" \
    --seed 1 --work build-sanitize/fuzz
fi
