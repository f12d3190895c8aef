#!/bin/bash
# contrib/check.sh - the full test suite, as CI runs it:
#   1. build with -Werror and run `make check` (unit, integration with real
#      Postfix/swaks/smtp-source/smtp-sink, fuzz corpora replay);
#   2. make install DESTDIR=... and check the files (contrib/install-check.sh);
#   3. the Quick start of the README (contrib/quickstart.sh);
#   4. rebuild with ASan+UBSan (_build-asan) and run the whole `make check`
#      again, daemons included: t/integration/lib.sh sends every program's
#      sanitizer reports to san-logs/TEST.asan.PID (RG_SAN_LOGS), a report
#      fails its test, and this stage fails when any is left there (the
#      first are printed). The 50 MiB round trips are skipped here
#      (RG_SMIME_SKIP_BIG=1; minutes under ASan, and stage 1 runs them);
#      prints its own time;
#   5. run the unit tests, fuzz replays and the provider's unit tests under
#      valgrind (memcheck). The whole suite under valgrind is
#      `make check-valgrind` (not here: far slower);
#   6. build the fuzz targets with clang and libFuzzer (+ ASan, UBSan) and
#      fuzz each for $FUZZ_SECS seconds (default 15) with
#      t/fuzz/run-fuzzers.sh: one PASS or FAIL per target; no clang or
#      libFuzzer is a FAIL, not a skip.
# doc/reliability.md, "Sanitizers and valgrind", and doc/fuzzing.md say what
# each one found.
# Ends with one line "N passed, N failed". Run as root (the integration
# tests start private Postfix instances and check the privilege drop).
set -u
cd "$(dirname "$0")/.." || exit 1
top=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)
sh contrib/deps.sh || exit 1

pass=0; fail=0; skip=0; status=0
count() {   # add up automake's summary of a test-suite.log
    local log=$1 p f s
    p=$(sed -n 's/^# PASS: *//p' "$log.summary" | tail -1)
    f=$(( $(sed -n 's/^# FAIL: *//p' "$log.summary" | tail -1) + $(sed -n 's/^# ERROR: *//p' "$log.summary" | tail -1) + $(sed -n 's/^# XPASS: *//p' "$log.summary" | tail -1) ))
    s=$(sed -n 's/^# SKIP: *//p' "$log.summary" | tail -1)
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0})); skip=$((skip + ${s:-0}))
}
run_check() {   # run_check NAME DIR MAKE-ARGS...
    local name=$1 dir=$2; shift 2
    echo "=== $name"
    ( cd "$dir" && make -j"$JOBS" check "$@" ) > "$top/check-$name.log" 2>&1
    local rc=$?
    grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$top/check-$name.log" > "$top/check-$name.log.summary"
    cat "$top/check-$name.log.summary"
    if [ $rc != 0 ]; then
        status=1
        echo "--- $name failed; failing tests:"
        grep -E '^(FAIL|ERROR|XPASS):' "$top/check-$name.log" | awk '{ print $2 }' | uniq | head -20 | while read -r t; do
            l=${t%.sh}.log   # automake names the log of t/x/NAME.sh t/x/NAME.log
            echo "----- $l"; grep -v '^ok' "$dir/$l" 2>/dev/null | tail -60; done
    fi
    count "$top/check-$name.log"
}

# Builds are out of tree (_build, _build-asan), so that they can coexist.
if [ -f config.status ]; then
    echo "the source tree is configured in place; run 'make distclean' first" >&2
    exit 1
fi
echo "=== build (-Werror)"
autoreconf -fi > build.log 2>&1 && mkdir -p _build &&
    ( cd _build && ../configure --enable-werror && make -j"$JOBS" ) >> build.log 2>&1
if [ $? != 0 ]; then tail -40 build.log; echo "0 passed, 1 failed"; exit 1; fi
run_check main "$top/_build"

echo "=== make install DESTDIR=... (contrib/install-check.sh)"
if ./contrib/install-check.sh "$top/_build" > check-install.log 2>&1; then
    echo "PASS: install: $(grep -c '^ok' check-install.log) checks"; pass=$((pass + 1))
else
    echo "FAIL: install"; grep -v '^ok' check-install.log | tail -20; fail=$((fail + 1)); status=1
fi

echo "=== Quick start (contrib/quickstart.sh, as the README gives it)"
qs_dir=$(mktemp -d /tmp/regigate-qs.XXXXXX) && chmod 755 "$qs_dir"
qs_port=$((20000 + RANDOM % 20000))
DEMO_DIR=$qs_dir/demo DEMO_PORT=$qs_port ./contrib/quickstart.sh > check-quickstart.log 2>&1
qs_rc=$?
DEMO_DIR=$qs_dir/demo ./contrib/quickstart.sh stop >> check-quickstart.log 2>&1
# the demo's two messages, checked at the capture sinks
if [ $qs_rc = 0 ] && grep -q 'action=encrypt rule=secure-subject status=sent' check-quickstart.log \
    && grep -q 'decrypt=ok' check-quickstart.log \
    && grep -q 'identical to what alice sent (apart from the \[secure\] the rule removed): yes' check-quickstart.log \
    && grep -qi '^Content-Type: application/pkcs7-mime' "$qs_dir"/demo/mail/outbound/msg-*.eml \
    && ! grep -q 'confidential' "$qs_dir"/demo/mail/outbound/msg-*.eml \
    && grep -q 'confidential' "$qs_dir"/demo/mail/inbound/msg-*.eml; then
    echo "PASS: quickstart: a message encrypted and decrypted"; pass=$((pass + 1))
else
    echo "FAIL: quickstart"; tail -30 check-quickstart.log; fail=$((fail + 1)); status=1
fi
rm -rf "$qs_dir"

echo "=== build (ASan + UBSan)"
rm -rf _build-asan && mkdir _build-asan
( cd _build-asan && ../configure --enable-werror --enable-asan --enable-ubsan > ../build-asan.log 2>&1 && make -j"$JOBS" >> ../build-asan.log 2>&1 )
if [ $? != 0 ]; then tail -40 build-asan.log; status=1; fail=$((fail + 1)); else
    rm -rf "$top/san-logs"
    asan_start=$SECONDS
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        RG_SAN_LOGS="$top/san-logs" RG_SMIME_SKIP_BIG=1 run_check asan "$top/_build-asan"
    echo "(ASan + UBSan stage: $((SECONDS - asan_start)) s)"
    # the reports of the programs the tests started (the unit tests' own are
    # in their logs). lib.sh failed the test of each one it saw; this also
    # catches a report written after its test had ended (a worker that
    # outlived it)
    reports=$(find "$top/san-logs" -type f -name '*.asan.*' 2>/dev/null | sort)
    if [ -n "$reports" ]; then
        echo "FAIL: asan: $(echo "$reports" | wc -l) sanitizer report(s) in san-logs/; the first:"
        echo "$reports" | head -3 | while read -r f; do echo "----- $f"; head -40 "$f"; done
        fail=$((fail + 1)); status=1
    else
        echo "PASS: asan: no sanitizer reports in san-logs/"; pass=$((pass + 1))
    fi
fi

echo "=== valgrind (memcheck) on the unit tests"
# test_provider_client is left out: its TLS handshakes under valgrind overrun the
# client's timeouts that the test checks (it runs in the plain and ASan stages)
units=$(make -s -C _build print-unit-tests | tr ' ' '\n' | grep -v '^t/provider/test_provider_client$' | tr '\n' ' ')
# the 50 MiB S/MIME round trip is covered by the plain and ASan runs
RG_SMIME_SKIP_BIG=1 run_check valgrind "$top/_build" TESTS="$units" \
    LOG_COMPILER="valgrind --quiet --suppressions=$top/t/valgrind.supp --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite"

fuzz_secs=${FUZZ_SECS:-15}
echo "=== fuzz (libFuzzer, $fuzz_secs s per target)"
# Only the target programs are built: the rest of the tree is not meant to
# be linked with -fsanitize=fuzzer. configure fails without clang or its
# libFuzzer runtime (libclang-rt-14-dev), and then every target FAILs.
rm -rf _build-fuzz && mkdir _build-fuzz
fuzz_targets=$(cd _build-fuzz && CC=clang ../configure --enable-werror --enable-fuzzers \
    --enable-asan --enable-ubsan > ../build-fuzz.log 2>&1 &&
    make -s print-fuzz-targets 2>>../build-fuzz.log | tail -n 1)
# shellcheck disable=SC2086
if [ -n "$fuzz_targets" ] && ( cd _build-fuzz && make -j"$JOBS" $fuzz_targets ) >> build-fuzz.log 2>&1; then
    ( cd _build-fuzz && ../t/fuzz/run-fuzzers.sh "$fuzz_secs" ) > check-fuzz.log 2>&1
    fuzz_rc=$?
else
    echo "--- fuzz build failed (build-fuzz.log):"; tail -20 build-fuzz.log
    fuzz_rc=2
    if [ -z "$fuzz_targets" ]; then
        for c in t/fuzz/fuzz_*.c; do fuzz_targets="$fuzz_targets ${c%.c}"; done
    fi
    : > check-fuzz.log
fi
for t in $fuzz_targets; do
    name=${t##*/}
    line=$(grep -E "^$name +" check-fuzz.log | tail -n 1)
    if printf '%s\n' "$line" | grep -Eq "^$name +OK "; then
        echo "PASS: $line"; pass=$((pass + 1))
    else
        echo "FAIL: ${line:-$name (not run)}"; fail=$((fail + 1)); status=1
    fi
done
if [ "$fuzz_rc" != 0 ]; then
    status=1
    grep -Ev '^fuzz_[a-z0-9_]+ +OK ' check-fuzz.log | head -40
fi

echo
[ "$skip" -gt 0 ] && echo "($skip skipped)"
echo "$pass passed, $fail failed"
exit $status
