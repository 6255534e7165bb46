#!/usr/bin/env bash
# Installs the pinned Go tools that `make lint` / `make vuln` use into
# $TOOLS_BIN (default: <repo>/.tools/bin). A tool is (re)built only when its
# binary is missing or its stamp file says it was built from another module
# version or with another Go toolchain.
#
# Usage: scripts/install-tools.sh NAME=PACKAGE@VERSION ...
#   e.g. scripts/install-tools.sh staticcheck=honnef.co/go/tools/cmd/staticcheck@v0.8.2
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_bin="${TOOLS_BIN:-$root/.tools/bin}"
stamps="$tools_bin/.stamps"
mkdir -p "$tools_bin" "$stamps"

# Tools are built with the toolchain that runs them (GOTOOLCHAIN from the
# Makefile), so a toolchain bump rebuilds them: staticcheck and gosec can only
# analyse code for Go versions up to the one they were built with.
goversion="$(go env GOVERSION)"

for spec in "$@"; do
	name="${spec%%=*}"
	pkgver="${spec#*=}"
	want="$pkgver $goversion"
	stamp="$stamps/$name"
	if [[ -x "$tools_bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		continue
	fi
	echo ">> installing $name ($pkgver, $goversion)"
	start=$SECONDS
	rm -f "$stamp"
	GOBIN="$tools_bin" GOFLAGS=-trimpath go install "$pkgver"
	# `go install` names the binary after the package's last element.
	built="${pkgver%@*}"
	built="${built##*/}"
	if [[ "$built" != "$name" ]]; then
		mv -f "$tools_bin/$built" "$tools_bin/$name"
	fi
	printf '%s\n' "$want" >"$stamp"
	echo ">> installed $name in $((SECONDS - start))s"
done
