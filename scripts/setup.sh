#!/usr/bin/env bash
# Installs the Debian packages this project builds with, and only those that are missing.
# Idempotent: a second run installs nothing and prints "present" for every package.
# Runs as root directly, or through sudo when run as another user.
# `setup.sh --bench` also installs the PyTorch peer of scripts/bench_cpu.sh: Debian's python3-torch
# calls whatever libblas.so.3 the alternatives system points at, which without OpenBLAS is the
# reference BLAS (about 2 GFLOP/s: a 30 s training step instead of 1-2 s).
set -euo pipefail

packages=(
  cmake             # build system (3.25 on Debian 12)
  ninja-build       # build tool the scripts use
  g++               # C++20 compiler, with OpenMP (libgomp)
  ccache            # compiler cache, picked up by CMake when present
  libeigen3-dev     # CPU GEMM
  nlohmann-json3-dev  # configs, metrics, safetensors headers
  doctest-dev       # unit tests
  libcli11-dev      # the apps' command lines (CLI11, header-only)
  zlib1g-dev        # gzip data files
  libpng-dev        # PNG images (image-folder datasets)
  libjpeg62-turbo-dev  # JPEG images (image-folder datasets)
  libopenmpi-dev    # MPI: multi-process training (engine/dist)
  openmpi-bin       # mpirun
  python3           # the data-parallel end-to-end tests compare runs (tests/apps/compare_runs.py)
  clang             # the fuzz build (build/fuzz): libFuzzer targets of every parser, tests/fuzz
  libclang-rt-14-dev  # libFuzzer and AddressSanitizer runtimes for clang (only recommended by clang)
  libomp-14-dev     # OpenMP for clang-built code (LLVM's runtime; g++ uses libgomp)
  dataset-fashion-mnist  # Fashion-MNIST in /usr/share/datasets/fashion-mnist
  bible-kjv         # the King James Bible: the main job's corpus (scripts/prepare_corpora.sh)
  iso-codes         # QA set: ISO 3166/639/4217/15924 records (/usr/share/iso-codes/json)
  tzdata            # QA set: time zones (/usr/share/zoneinfo/zone1970.tab)
  wordnet-base      # QA set: WordNet glosses (/usr/share/wordnet/data.*)
)
if [[ "${1:-}" == --bench ]]; then
  packages+=(
    python3-torch         # the benchmark's PyTorch peer (bench/torch_gpt_step.py)
    libopenblas0-pthread  # becomes libblas.so.3 for it (higher alternatives priority than the reference BLAS)
  )
fi

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "setup: missing ${missing[*]}, and this is not root and sudo is absent: install them as root" >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

for package in "${packages[@]}"; do
  if [[ " ${missing[*]} " == *" $package "* ]]; then
    installed "$package" || { echo "setup: $package failed to install" >&2; exit 1; }
    echo "setup: $package installed"
  else
    echo "setup: $package present"
  fi
done
