# Sonde: build, run and check.
#
#   make build   build bin/sonde, bin/sonde-appliance, bin/sonde-agent (and bin/sonde-bench):
#                static (no cgo), stripped
#   make up      build, then run the whole system with data in ./sonde-data
#   make test    test-deps + lint + vuln, then every Go test with the race detector,
#                the state store's, the hub's and the web UI's tests again on PostgreSQL,
#                then every fuzz target for a short budget (FUZZTIME, default 6s)
#   make fuzz    only the fuzz targets
#   make lint    gofmt, go vet, staticcheck, gosec
#   make vuln    govulncheck against an offline vulnerability database
#   make fmt     gofmt -w every Go file
#   make clean   remove bin/ and coverage files (.tools/ is kept; `make distclean` removes it too)

# Go 1.26.8's standard library has known vulnerabilities: build, test and scan
# with this toolchain; the go command fetches it from the module proxy. This
# overrides a GOTOOLCHAIN from the environment on purpose.
export GOTOOLCHAIN := go1.27.3

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif

# Pinned tools, built from the module proxy into .tools/bin (see scripts/install-tools.sh).
TOOLS_DIR := $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS_DIR)/bin
export TOOLS_DIR TOOLS_BIN
STATICCHECK_VERSION := v0.8.2
GOSEC_VERSION       := v2.30.0
GOVULNCHECK_VERSION := v1.9.0
# Offline vulnerability database: a golang.org/x/vulndb version served by the
# module proxy. Bump it to pick up newer advisories (see scripts/vulndb.sh).
export VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018

# gosec rules excluded for the whole tree. Keep this list short: prefer a
# `// #nosec G### -- reason` on the line (rule IDs and a reason are required).
#   G104 (unchecked errors): its hits are Close() on paths that already
#        fail, hash.Hash.Write (documented never to fail) and writes to an
#        http.ResponseWriter whose error has nobody left to report to.
#   G115 (integer overflow in conversions): flags deliberate bit-pattern
#        int64<->uint64 conversions (SQLite has no uint64, protobuf varints,
#        hashing IDs, timestamps); ranges that matter are checked and tested.
GOSEC_EXCLUDES := G104,G115

CMDS := sonde sonde-appliance sonde-agent
ifneq ($(wildcard cmd/sonde-bench/.),)
CMDS += sonde-bench
endif

GO_TEST_FLAGS := -race -count=1 -timeout 15m

.PHONY: build up test test-deps lint vuln fuzz tools fmt clean distclean

build:
	@echo ">> $$(go version); building $(CMDS) version $(VERSION)"
	@$(if $(filter sonde-bench,$(CMDS)),,echo ">> cmd/sonde-bench does not exist: bin/sonde-bench not built")
	@mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/ $(addprefix ./cmd/,$(CMDS))

up: build
	./bin/sonde up

test: test-deps lint vuln
	scripts/gotest.sh $(GO_TEST_FLAGS) ./...
	SONDE_STATE_BACKEND=postgres scripts/gotest.sh $(GO_TEST_FLAGS) ./internal/state/ ./internal/hub/ ./internal/web/
	scripts/fuzz.sh

fuzz:
	scripts/fuzz.sh

test-deps:
	scripts/install-test-deps.sh

tools:
	@scripts/install-tools.sh \
		staticcheck=honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) \
		gosec=github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION) \
		govulncheck=golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

# gosec leaves _test.go files out (its default): tests may read fixed paths,
# run helper processes and use weak randomness on purpose.
lint: test-deps tools
	scripts/check-gofmt.sh
	go vet ./...
	@echo ">> staticcheck $(STATICCHECK_VERSION) ./..."
	$(TOOLS_BIN)/staticcheck ./...
	@echo ">> gosec $(GOSEC_VERSION) ./... (rules excluded: $(GOSEC_EXCLUDES); _test.go files are not scanned)"
	$(TOOLS_BIN)/gosec -terse -color=false -exclude=$(GOSEC_EXCLUDES) \
		-nosec-require-rules -nosec-require-justification ./...

vuln: test-deps tools
	scripts/vulndb.sh ./...

fmt:
	find . \( -path ./.git -o -path ./.tools -o -path ./bin -o -path ./sonde-data -o -name testdata \) -prune \
		-o -type f -name '*.go' -print0 | xargs -0 -r "$$(go env GOROOT)/bin/gofmt" -w

clean:
	rm -rf bin/ coverage.out coverage.html *.coverprofile

distclean: clean
	rm -rf $(TOOLS_DIR)
