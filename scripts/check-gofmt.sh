#!/usr/bin/env bash
# Fails, listing the files, when any Go file in the repository is not
# gofmt-formatted. Uses the gofmt of the active toolchain (GOTOOLCHAIN), so
# formatting matches the compiler the project builds with. testdata/ is
# skipped: files there may be deliberately malformed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
gofmt="$(go env GOROOT)/bin/gofmt"

mapfile -d '' files < <(find . \( -path ./.git -o -path ./.tools -o -path ./bin \
	-o -path ./sonde-data -o -name testdata -o -name node_modules \) -prune \
	-o -type f -name '*.go' -print0)
if ((${#files[@]} == 0)); then
	echo ">> gofmt: no Go files"
	exit 0
fi

# gofmt exits non-zero on a syntax error; that fails the check too.
unformatted="$("$gofmt" -l "${files[@]}")"
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files are not formatted (run 'make fmt' or gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo ">> gofmt: ${#files[@]} files formatted"
