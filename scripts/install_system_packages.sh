#!/usr/bin/env bash
# Debian packages the test suite drives for real, installed once per machine (a fresh machine has
# only what the project's own scripts install):
#   chromium, chromium-driver  the UI check signs in to Airflow in headless Chromium (Selenium)
#   docker-compose             `docker-compose config` validates docker-compose.yaml; it parses
#                              without a container engine, which these machines do not run
# Needs root (or passwordless sudo) the first time; does nothing when everything is present.
set -euo pipefail
declare -A wanted=([chromium]=/usr/bin/chromium [chromium-driver]=/usr/bin/chromedriver
                   [docker-compose]=/usr/bin/docker-compose)
missing=()
for package in "${!wanted[@]}"; do
  [ -x "${wanted[$package]}" ] || missing+=("$package")
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
