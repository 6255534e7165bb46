#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short budget each
# (FUZZTIME, default 6s): `make fuzz`, and part of `make test`.
#
# The seed corpora are committed under each package's testdata/fuzz/<Target>/
# and run as plain tests by every `go test`; this script looks for new
# failures beyond them. A failure stops the run, and go test writes the
# failing input under testdata/fuzz/<Target>/ for a regression test.
#
# To grow a committed corpus: FUZZTIME=60s FUZZ_KEEP=1 scripts/fuzz.sh, which
# copies up to FUZZ_KEEP_MAX (50) new inputs per target from the fuzz cache
# into testdata/fuzz/<Target>/.
set -euo pipefail

fuzztime="${FUZZTIME:-6s}"
keep="${FUZZ_KEEP:-}"
keep_max="${FUZZ_KEEP_MAX:-50}"
cache="$(go env GOCACHE)/fuzz"
module="$(go list -m)"

# package directory and target name of every fuzz target, found in the
# test files (so a new target is fuzzed without editing this script).
mapfile -t targets < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . \
	| grep -v -e '^./.tools/' -e '/testdata/' | sort | while read -r file; do
		dir="$(dirname "$file")"
		grep -oE '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' \
			| while read -r name; do echo "$dir $name"; done
	done)

echo ">> fuzzing ${#targets[@]} targets for ${fuzztime} each"
start=$SECONDS
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo ">> fuzz ${dir#./} ${name}"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir"
	if [[ -n "$keep" ]]; then
		pkg="$(cd "$dir" && go list .)"
		src="$cache/$pkg/$name"
		dst="$dir/testdata/fuzz/$name"
		if [[ -d "$src" ]]; then
			mkdir -p "$dst"
			n=0
			for f in $(ls -S "$src" | tac); do # the smallest inputs first
				[[ -e "$dst/$f" ]] && continue
				((n >= keep_max)) && break
				cp "$src/$f" "$dst/$f"
				n=$((n + 1))
			done
			echo "   kept $n new inputs in ${dst#./}"
		fi
	fi
done
echo ">> fuzzing done: ${#targets[@]} targets in $((SECONDS - start))s (module ${module})"
