# hotline — the project's commands.  CMake does the building; this file only
# names the steps.  Every target first runs scripts/deps.sh, which installs
# missing Debian packages (see README.md).
#
#   make         build build/hotline
#   make check   unit + integration tests, the same under ASan/UBSan, fuzz smoke
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (default 300) each,
#                JOBS at a time
#   make demo    two stations on 127.0.0.1, end to end
#   make bench   benchmarks beside their baselines
#   make install hotline, hotline-mail, manual pages, the systemd unit, docs
#                under PREFIX (default /usr/local), staged under DESTDIR
#   make clean

JOBS ?= 2
# ctest slots: three per core, since most integration tests wait on sockets
# and timers; a test that keeps a core busy takes three (PROCESSORS in
# CMakeLists.txt).
TEST_JOBS ?= $(shell echo $$((3 * $(JOBS))))
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_SECONDS ?= 300
CMAKE ?= cmake
# Extra CMake options for the release build; `make check` sets
# -DHOTLINE_TESTS=ON (a plain `make` builds the tests only when cmocka is
# installed: building build/hotline needs no test-only package).
BUILD_OPTS ?=
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all build install check background-builds fuzz-build fuzz-run fuzz demo bench clean

all: build

build:
	@scripts/deps.sh build
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(BUILD_OPTS) >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

# The prefix is compiled in (hotline finds hotline-mail there), so the
# release build is configured for PREFIX before it is installed.
install:
	@scripts/deps.sh build
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(BUILD_OPTS) >/dev/null
	@$(CMAKE) --build build -j $(JOBS)
	@DESTDIR=$(if $(DESTDIR),$(abspath $(DESTDIR))) $(CMAKE) --install build

build-asan/.configured:
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHOTLINE_SANITIZE=ON -DHOTLINE_TESTS=ON >/dev/null
	@touch $@

build-fuzz/.configured:
	@CC=clang $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOTLINE_FUZZ=ON >/dev/null
	@touch $@

# The sanitizer and fuzz builds run in the background from the start, at
# the lowest priority (they take the CPU nothing else wants: mostly while the
# release tests wait on timers), in a session of their own, killed if check
# stops early; their output is in build/background-builds.log.  A session
# is a scheduler autogroup, weighed against other sessions by its own nice
# (/proc/PID/autogroup), hence that nice 19 beside the processes' own (for
# kernels without autogroups).  Once check waits for them, both go back to 0.
check:
	@scripts/deps.sh check
	@mkdir -p build
	@set -e; \
	setsid sh -c '{ echo 19 >/proc/self/autogroup; } 2>/dev/null; \
	  exec nice -n 19 $(MAKE) --no-print-directory background-builds' \
	  >build/background-builds.log 2>&1 & bg=$$!; \
	trap 'kill -TERM -$$bg 2>/dev/null || true' EXIT; \
	trap 'exit 130' INT TERM HUP; \
	$(MAKE) --no-print-directory build BUILD_OPTS=-DHOTLINE_TESTS=ON; \
	echo "== tests (release build)"; \
	(cd build && ctest --output-on-failure -j $(TEST_JOBS)); \
	echo "== sanitizer and fuzz builds"; \
	{ echo 0 >/proc/$$bg/autogroup; renice -n 0 -g $$bg; } >/dev/null 2>&1 || true; \
	if ! wait $$bg; then \
	  tail -n 60 build/background-builds.log >&2; \
	  echo "make check: the sanitizer or fuzz build failed (build/background-builds.log)" >&2; \
	  exit 1; \
	fi; \
	trap - EXIT INT TERM HUP
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(TEST_JOBS)
	@echo "== fuzz smoke ($(FUZZ_SMOKE_SECONDS) s per target, $(JOBS) at a time)"
	@$(MAKE) --no-print-directory fuzz-run SECONDS=$(FUZZ_SMOKE_SECONDS)
	@echo "== make check: all passed"

background-builds:
	@$(MAKE) --no-print-directory build-asan/.configured
	@$(CMAKE) --build build-asan -j $(JOBS)
	@$(MAKE) --no-print-directory build-fuzz/.configured
	@$(CMAKE) --build build-fuzz -j $(JOBS)

fuzz-build:
	@scripts/deps.sh check
	@$(MAKE) --no-print-directory build-fuzz/.configured
	@$(CMAKE) --build build-fuzz -j $(JOBS)

fuzz-run: fuzz-build
	@FUZZ_JOBS=$(JOBS) scripts/fuzz.sh build-fuzz/fuzz $(SECONDS)

fuzz:
	@$(MAKE) --no-print-directory fuzz-run SECONDS=$(FUZZ_SECONDS)

demo: build
	@scripts/demo.sh build/hotline

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@scripts/bench.sh build/hotline

clean:
	rm -rf build build-asan build-fuzz
