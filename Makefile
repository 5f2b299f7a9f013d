# bosbackup — `make demo` sets up and runs the story, `make test` runs every test.
#
# One build serves demo, test, install and deb: `swift build -c release` with testability
# (the tests @testable-import BOSBackup), tests added by `make test`, so `make demo` then
# `make test` compile the dependency tree once. The shipped binary, $(DIST), is linked from
# those objects with the Swift runtime static and symbols stripped (scripts/link-static.py);
# the tests run it (BOSBACKUP_BIN), so they test what is installed.
SWIFT   ?= swift
PREFIX  ?= /usr/local
RELEASE_FLAGS := -c release -Xswiftc -enable-testing
DIST    ?= .build/dist/bosbackup
DEB_DIR ?= .build/deb
TEST_ENV = BOSBACKUP_BIN=$(abspath $(DIST)) BOSBACKUP_RELEASE_BIN=$(abspath $(DIST))

.PHONY: deps test-deps bench-deps build debug test torture fuzz demo bench install deb clean

deps:
	@scripts/install-deps.sh

test-deps:
	@WITH_TEST_DEPS=1 scripts/install-deps.sh

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product bosbackup
	@scripts/link-static.py $(DIST)

debug: deps
	$(SWIFT) build

test: test-deps
	$(SWIFT) build $(RELEASE_FLAGS) --build-tests
	@scripts/link-static.py $(DIST)
	$(TEST_ENV) $(SWIFT) test $(RELEASE_FLAGS) --skip-build --disable-swift-testing

# The reliability suites at full size: 200 SIGKILLs instead of 30, and 40 instead of 8
# during S3 uploads (CloudCLITests.testKillsDuringUpload…; 'CLITests' matches CloudCLITests).
torture: test-deps
	$(SWIFT) build $(RELEASE_FLAGS) --build-tests
	@scripts/link-static.py $(DIST)
	CRASH_KILLS=200 S3_CRASH_KILLS=40 ARCHIVE_KILLS=20 ARCHIVE_RESTORES=100 $(TEST_ENV) $(SWIFT) test $(RELEASE_FLAGS) --skip-build --disable-swift-testing --filter 'CrashSuite|CorruptionSuite|CLITests|WALArchiveTests.testArchiverKilled'

# Each parser fuzzed for FUZZ_SECONDS (default 60) with the seeded mutation loop.
fuzz: test-deps
	$(SWIFT) build $(RELEASE_FLAGS) --build-tests
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} $(SWIFT) test $(RELEASE_FLAGS) --skip-build --disable-swift-testing --filter FuzzTests

demo: build
	@scripts/demo.sh $(DIST)

bench-deps:
	@EXTRA_DEBIAN_PACKAGES="pigz restic borgbackup time" scripts/install-deps.sh

bench: bench-deps test-deps build
	python3 bench/bench.py
	BENCH_BIN=$(DIST) python3 bench/archive_bench.py
	BENCH_BIN=$(DIST) python3 bench/timeline_bench.py

# Installs what `make build` built (no build, no apt): the binary, its man page and bash/zsh/fish
# completions, the example policy and logrotate snippet in $(PREFIX)/share/bosbackup.
install:
	@scripts/stage.sh $(DIST) "$(DESTDIR)" $(PREFIX)

# $(DEB_DIR)/bosbackup_<version>_<arch>.deb from the same binary (no build).
deb:
	@scripts/build-deb.sh $(DIST) $(DEB_DIR)

clean:
	rm -rf .build demo-out
