#!/usr/bin/env bash
# Debian packages the test suite drives for real: headless Chromium (the HTML report and server UI tests),
# Prometheus with promtool (the Prometheus source test) and Alertmanager (the `serve` webhook test).
# Installed only when missing; tests that need them skip with a clear message when they cannot be had (for example, not root).
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: cannot install ${need[*]} (needs root and apt-get); those tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null \
  || echo "install-system-deps: apt-get could not install ${need[*]}; those tests will skip" >&2
exit 0
