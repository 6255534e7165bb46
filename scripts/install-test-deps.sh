#!/usr/bin/env bash
# Installs the Debian packages that `make test` needs and that are missing.
#
# TEST_DEPS is the one list to edit: add a package here when a test or a
# scanner starts to need it (snmpd, postgresql, chromium, prometheus, ...).
# The Go tools themselves (staticcheck, gosec, govulncheck) come from the Go
# module proxy via scripts/install-tools.sh and need nothing from Debian.
#   gcc, libc6-dev: cgo, which `go test -race` needs.
#   snmpd: the real SNMP agent the snmp probe is tested against.
#   fping: the reference the icmp probe is compared with (sonde-bench icmp).
#   python3-aiosmtpd: the real SMTP server (STARTTLS, AUTH) the e-mail
#     notifier is tested against; run with Debian's /usr/bin/python3.
#   chromium, chromium-driver: the headless browser the web UI's end-to-end
#     tests drive over WebDriver (plain HTTP: no Go dependency for it).
#   postgresql: the state store's and the hub's tests run again on a real
#     PostgreSQL server (started by internal/testutil/pgtest, not the
#     system's cluster).
#   prometheus, victoria-metrics: the remote TSDBs the hub's remote-write
#     and query paths are tested against (started on free loopback ports by
#     internal/testutil/tsdbtest with their data in a temporary directory;
#     the packages' own services are not used).
TEST_DEPS="gcc libc6-dev snmpd fping python3-aiosmtpd chromium chromium-driver postgresql prometheus victoria-metrics"

set -euo pipefail

missing=()
for pkg in $TEST_DEPS; do
	if ! dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	echo ">> test dependencies present: $TEST_DEPS"
	exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
	echo "install-test-deps: missing Debian packages: ${missing[*]}" >&2
	echo "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo ">> installing missing test dependencies: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
