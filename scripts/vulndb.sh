#!/usr/bin/env bash
# Runs govulncheck against an OFFLINE Go vulnerability database.
#
# The database is built from the golang.org/x/vulndb module, which the Go
# module proxy serves: its data/osv/*.json files are the reviewed OSV entries
# that vuln.go.dev publishes. vulndb's own cmd/indexdb turns them into the v1
# database layout that `govulncheck -db file://...` reads:
#   index/db.json  index/modules.json  index/vulns.json  ID/<GO-id>.json
# The result is cached under $TOOLS_DIR/vulndb/<version> and built only once.
#
# Usage: scripts/vulndb.sh [govulncheck args...]   (default: ./...)
#        scripts/vulndb.sh --build-only            (print the DB dir, run nothing)
# Env:   VULNDB_VERSION  golang.org/x/vulndb version (bump to refresh the DB)
#        TOOLS_DIR       default <repo>/.tools
#        GOVULNCHECK     govulncheck binary (default $TOOLS_DIR/bin/govulncheck)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"
TOOLS_DIR="${TOOLS_DIR:-$root/.tools}"
GOVULNCHECK="${GOVULNCHECK:-$TOOLS_DIR/bin/govulncheck}"
db="$TOOLS_DIR/vulndb/$VULNDB_VERSION"

db_complete() {
	[[ -f "$db/.complete" && -s "$db/index/db.json" && -s "$db/index/modules.json" &&
		-s "$db/index/vulns.json" && -d "$db/ID" ]]
}

build_db() {
	local start=$SECONDS src n
	echo ">> building offline vulnerability DB golang.org/x/vulndb@$VULNDB_VERSION"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT

	# Outside any module, so the project's go.mod/go.sum are never touched.
	src="$(cd "$tmp" && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	if [[ -z "$src" || ! -d "$src/data/osv" ]]; then
		echo "vulndb.sh: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv (Dir=${src:-?})" >&2
		return 1
	fi
	n="$(find "$src/data/osv" -maxdepth 1 -name '*.json' | wc -l)"
	if ((n < 1000)); then
		echo "vulndb.sh: only $n OSV entries in $src/data/osv; refusing to build a partial DB" >&2
		return 1
	fi

	(cd "$tmp" && TOOLS_BIN="$TOOLS_DIR/bin" "$root/scripts/install-tools.sh" \
		"indexdb=golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION")
	"$TOOLS_DIR/bin/indexdb" -vulns "$src/data/osv" -out "$tmp/db"
	# indexdb writes every file twice, plain and .gz; a file:// DB is read
	# from the plain .json files only.
	find "$tmp/db" -name '*.json.gz' -delete
	# The OSV files carry no modification times (vuln.go.dev takes them from
	# git history), so date the DB by the vulndb commit in the pseudo-version.
	if [[ "$VULNDB_VERSION" =~ -([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})-[0-9a-f]{12}$ ]]; then
		local m=("${BASH_REMATCH[@]}")
		printf '{"modified":"%s-%s-%sT%s:%s:%sZ"}' "${m[1]}" "${m[2]}" "${m[3]}" "${m[4]}" "${m[5]}" "${m[6]}" \
			>"$tmp/db/index/db.json"
	fi
	echo "golang.org/x/vulndb@$VULNDB_VERSION" >"$tmp/db/.complete"

	mkdir -p "$(dirname "$db")"
	rm -rf "$db"
	mv "$tmp/db" "$db"
	# Drop DBs of other vulndb versions: only the pinned one is used.
	find "$(dirname "$db")" -mindepth 1 -maxdepth 1 -type d ! -name "$VULNDB_VERSION" -exec rm -rf {} +
	echo ">> built $db ($n entries) in $((SECONDS - start))s"
}

tmp=""
db_complete || build_db
[[ -z "$tmp" ]] || rm -rf "$tmp" # the EXIT trap does not survive the exec below
db_complete || { echo "vulndb.sh: $db is incomplete" >&2; exit 1; }

if [[ "${1:-}" == "--build-only" ]]; then
	echo "$db"
	exit 0
fi
if [[ ! -x "$GOVULNCHECK" ]]; then
	echo "vulndb.sh: $GOVULNCHECK not found (run 'make tools')" >&2
	exit 1
fi
(($# > 0)) || set -- ./...
echo ">> govulncheck -db file://$db $*"
exec "$GOVULNCHECK" -db "file://$db" "$@"
