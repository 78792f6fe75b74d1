#!/usr/bin/env bash
# Debian packages the test suite and the benchmarks drive for real, installed once per machine (a
# fresh machine has only what the project's own scripts install):
#   chromium, chromium-driver  the UI check signs in to Airflow in headless Chromium (Selenium)
#   docker-compose             `docker-compose config` validates docker-compose.yaml; it parses
#                              without a container engine, which these machines do not run
#   libopenblas0-pthread       native BLAS and LAPACK for Spark ML (ALS): it registers itself as
#                              libblas.so.3 / liblapack.so.3, which Spark's netlib loader dlopens;
#                              without it Spark logs "dlopen(libblas.so.3) failed" and falls back
#                              to Java loops (benchmarks/scale.py measures the difference)
# Needs root (or passwordless sudo) the first time; does nothing when everything is present.
set -euo pipefail
wanted=(chromium chromium-driver docker-compose libopenblas0-pthread)
missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "Missing Debian packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
