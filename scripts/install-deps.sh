#!/usr/bin/env bash
# Installs chestlab's build and test dependencies from Debian's packages (Debian 12).
# Runs apt-get as root, or through sudo when it is there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU); OpenBLAS, or matrix products crawl
  libgloo-dev                               # Gloo headers for LibTorch's c10d (run --distributed)
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libhdf5-dev libfmt-dev libtomlplusplus-dev catch2
  libdcmtk-dev libtiff-dev zlib1g-dev
  libturbojpeg0-dev                         # DICOM JPEG fast path (libjpeg-turbo, DCT-domain downscale)
  libprotobuf-dev protobuf-compiler          # TensorBoard event files (framework/engine/proto)
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libcairo2-dev fonts-dejavu-core            # charts (chestlab explore, curves, report)
  chromium-headless-shell                   # the report test renders the HTML page (skipped without)
  python3 python3-h5py python3-numpy        # the tests read run files the way users do
  python3-protobuf                          # the tests read event files the way TensorBoard does
  python3-torch                             # tests of [model] init and `chestlab export` (torch.save / torch.load)
  python3-pydicom python3-skimage           # bench_rsna_io's row for the notebooks' pydicom + skimage pipeline
  slurm-wlm munge                           # the sweep test's one-node Slurm (tests/slurm/local_slurm.sh)
)

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
