#!/usr/bin/env bash
# run_pytest.sh — how ctest runs one integration test file: Debian's
# python3 (which has pytest and dissononce), quiet, no cache.  When a
# selection leaves no test to run in the file (pytest's exit status 5, e.g.
# every test marked slow in a sanitizer build), exit 77, which ctest
# reports as "Skipped" rather than passed.  HOTLINE_TEST_NICE (set by
# CMakeLists.txt for the real-time voice tests) runs the file at that
# niceness; where it may not be raised (not root), nice says so and the
# file runs as is.
run=(/usr/bin/python3 -m pytest -q -p no:cacheprovider "$@")
if [ -n "${HOTLINE_TEST_NICE:-}" ]; then
  run=(nice -n "$HOTLINE_TEST_NICE" "${run[@]}")
fi
"${run[@]}"
rc=$?
[ "$rc" -eq 5 ] && exit 77
exit "$rc"
