#!/usr/bin/env bash
# Runs `go test "$@"`.
#
# Under CI=true no skip may pass silently: the tests run with -v, so every
# skip is in the log with its reason, and at the end every skipped test is
# listed again with the lines it logged, followed by a closing count
# ("go-test: N passed, N failed, N skipped", subtests included).
# Elsewhere it is a plain `go test`.
set -euo pipefail

if [[ "${CI:-}" != "true" ]]; then
	exec go test "$@"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

rc=0
go test -v "$@" 2>&1 | tee "$log" || rc=$?

# Attribute each indented output line to the test that printed it (go test -v
# marks switches between tests with === RUN/CONT/NAME lines) and print the
# output of every skipped test.
awk '
	/^=== (RUN|CONT|NAME|PAUSE)[ \t]/ { cur = $3; next }
	/^[ \t]*--- SKIP: / {
		name = $3
		skipped[++n] = name
		reason[name] = out[name]
		next
	}
	/^[ \t]*--- (PASS|FAIL): / { next }
	/^(ok|FAIL|PASS|\?)[ \t]/ { cur = ""; next }
	/^[ \t]+/ && cur != "" { out[cur] = out[cur] $0 "\n" }
	END {
		if (n == 0) exit
		printf "\n>> %d skipped test(s):\n", n
		for (i = 1; i <= n; i++) {
			printf "--- SKIP: %s\n%s", skipped[i], reason[skipped[i]]
		}
	}
' "$log"

passed="$(grep -cE '^[[:space:]]*--- PASS: ' "$log" || true)"
failed="$(grep -cE '^[[:space:]]*--- FAIL: ' "$log" || true)"
skipped="$(grep -cE '^[[:space:]]*--- SKIP: ' "$log" || true)"
if ((rc != 0 && failed == 0)); then
	# A build failure or a panic fails a package without a --- FAIL line.
	failed="$(grep -cE '^FAIL[[:space:]]+[^[:space:]]+' "$log" || true)"
	((failed > 0)) || failed=1
fi
echo
echo "go-test: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
