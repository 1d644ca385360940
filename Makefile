# hotline — the project's commands.  CMake does the building; this file only
# names the steps.  Every target first runs scripts/deps.sh, which installs
# missing Debian packages (see README.md).
#
#   make         build build/hotline
#   make check   unit + integration tests, the same under ASan/UBSan, fuzz smoke
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (default 300) each
#   make demo    two stations on 127.0.0.1, end to end
#   make bench   benchmarks beside their baselines
#   make install hotline, hotline-mail, manual pages, the systemd unit, docs
#                under PREFIX (default /usr/local), staged under DESTDIR
#   make clean

JOBS ?= 2
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SECONDS ?= 300
CMAKE ?= cmake
# Extra CMake options for the release build; `make check` sets
# -DHOTLINE_TESTS=ON (a plain `make` builds the tests only when cmocka is
# installed: building build/hotline needs no test-only package).
BUILD_OPTS ?=
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all build install check unit-asan fuzz-build fuzz fuzz-smoke demo bench clean

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

check:
	@scripts/deps.sh check
	@$(MAKE) --no-print-directory build BUILD_OPTS=-DHOTLINE_TESTS=ON
	@echo "== tests (release build)"
	@cd build && ctest --output-on-failure -j $(JOBS)
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	@$(MAKE) --no-print-directory build-asan/.configured
	@$(CMAKE) --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)
	@echo "== fuzz smoke ($(FUZZ_SMOKE_SECONDS) s per target)"
	@$(MAKE) --no-print-directory fuzz-run SECONDS=$(FUZZ_SMOKE_SECONDS)
	@echo "== make check: all passed"

fuzz-build:
	@scripts/deps.sh check
	@$(MAKE) --no-print-directory build-fuzz/.configured
	@$(CMAKE) --build build-fuzz -j $(JOBS)

fuzz-run: fuzz-build
	@scripts/fuzz.sh build-fuzz/fuzz $(SECONDS)

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
