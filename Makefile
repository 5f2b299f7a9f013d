# bosbackup — `make demo` sets up and runs the story, `make test` runs every test.
SWIFT   ?= swift
PREFIX  ?= /usr/local
RELEASE := .build/release/bosbackup

.PHONY: deps test-deps bench-deps build debug test torture fuzz demo bench install clean

deps:
	@scripts/install-deps.sh

test-deps:
	@WITH_TEST_DEPS=1 scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

debug: deps
	$(SWIFT) build

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing

# The reliability suites at full size: 200 SIGKILLs instead of 30, and 40 instead of 8
# during S3 uploads (CloudCLITests.testKillsDuringUpload…; 'CLITests' matches CloudCLITests).
torture: test-deps
	$(SWIFT) build --build-tests
	CRASH_KILLS=200 S3_CRASH_KILLS=40 $(SWIFT) test --skip-build --disable-swift-testing --filter 'CrashSuite|CorruptionSuite|CLITests'

# Each parser fuzzed for FUZZ_SECONDS (default 60) with the seeded mutation loop.
fuzz: test-deps
	$(SWIFT) build --build-tests
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} $(SWIFT) test --skip-build --disable-swift-testing --filter FuzzTests

demo: build
	@scripts/demo.sh $(RELEASE)

bench-deps:
	@EXTRA_DEBIAN_PACKAGES="pigz restic borgbackup time" scripts/install-deps.sh

bench: bench-deps build
	python3 bench/bench.py

install: build
	install -D -m 0755 $(RELEASE) $(DESTDIR)$(PREFIX)/bin/bosbackup
	install -D -m 0644 schedules/bos.yml $(DESTDIR)$(PREFIX)/share/bosbackup/bos.yml

clean:
	rm -rf .build demo-out
