#!/usr/bin/env bash
# Configures and builds chestlab in ./build (Release, Ninja, ccache when present).
#   scripts/build.sh                       everything, in ./build
#   scripts/build.sh --sanitize            everything with ASan + UBSan, in ./build-sanitize
#   scripts/build.sh [--sanitize] --target T   only target T and what it needs (e.g. test_core)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
flags=(-DCMAKE_BUILD_TYPE=Release)
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHESTLAB_SANITIZE=ON) ;;
    --target) shift; targets+=(--target "${1:?--target needs a name}") ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
cmake -S . -B "$dir" -G Ninja "${flags[@]}"
cmake --build "$dir" "${targets[@]}"
