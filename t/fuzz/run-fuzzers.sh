#!/bin/sh
# run-fuzzers.sh - run every libFuzzer target of t/fuzz for a bounded time.
#
#   t/fuzz/run-fuzzers.sh [SECONDS [TARGET...]]
#
# Run it in a build directory configured with
#   CC=clang SRCDIR/configure --enable-fuzzers --enable-asan --enable-ubsan
# (--enable-fuzzers puts the coverage instrumentation,
# -fsanitize=fuzzer-no-link, into the flags of lib/ and the targets) where
# the targets are built already (make $(make -s print-fuzz-targets)): this
# script builds nothing. Each target runs for SECONDS (default 30) with
# -max_total_time on a copy of its seed corpus t/fuzz/corpus/NAME, so the
# source tree is never written to. TARGET is a name such as smtp_cmd; by
# default every t/fuzz/fuzz_NAME program of the build directory that has a
# corpus is run, one after the other.
#
# Prints one summary line per target (executions, coverage "cov:",
# features, corpus size, speed, findings) and exits 1 if any target found
# something (crash, leak, timeout, out-of-memory, sanitizer report) or did
# not run, 0 otherwise. Findings are kept under the printed work directory.
#
# Environment:
#   RG_FUZZ_BUILDDIR  build directory (default: .)
#   RG_FUZZ_ARGS      more libFuzzer options, e.g. "-max_len=8192"
#   RG_FUZZ_KEEP=1    keep the work directory (grown corpora, logs) even
#                     when nothing was found
set -u

secs=${1:-30}
[ $# -gt 0 ] && shift
case $secs in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS [TARGET...]]" >&2; exit 2 ;;
esac

builddir=${RG_FUZZ_BUILDDIR:-.}
srcdir=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
corpora=$srcdir/t/fuzz/corpus

if [ ! -f "$builddir/Makefile" ]; then
    echo "run-fuzzers: $builddir is not a build directory (no Makefile)" >&2
    exit 2
fi
if ! grep -q '^FUZZ_LDFLAGS = .*-fsanitize=fuzzer' "$builddir/Makefile"; then
    echo "run-fuzzers: $builddir is not configured with --enable-fuzzers" >&2
    exit 2
fi
# Without coverage instrumentation libFuzzer mutates blindly: refuse.
if ! grep -Eq '^(CFLAGS|RG_CFLAGS) = .*-fsanitize=fuzzer-no-link' "$builddir/Makefile"; then
    echo "run-fuzzers: the build is not instrumented for coverage (no" \
         "-fsanitize=fuzzer-no-link in CFLAGS or RG_CFLAGS); configure it" \
         "again with --enable-fuzzers" >&2
    exit 2
fi

if [ $# -eq 0 ]; then
    for bin in "$builddir"/t/fuzz/fuzz_*; do
        [ -f "$bin" ] && [ -x "$bin" ] || continue
        name=${bin##*/fuzz_}
        [ -d "$corpora/$name" ] && set -- "$@" "$name"
    done
fi
if [ $# -eq 0 ]; then
    echo "run-fuzzers: no fuzz targets built in $builddir/t/fuzz" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rg-fuzz.XXXXXX") || exit 2
failed=0
echo "run-fuzzers: ${secs}s per target, work directory $work"

for name in "$@"; do
    bin=$builddir/t/fuzz/fuzz_$name
    dir=$work/$name
    mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
    if [ ! -x "$bin" ]; then
        printf '%-24s MISSING (build it: make t/fuzz/fuzz_%s)\n' "fuzz_$name" "$name"
        failed=1
        continue
    fi
    if [ ! -d "$corpora/$name" ]; then
        printf '%-24s MISSING corpus %s\n' "fuzz_$name" "$corpora/$name"
        failed=1
        continue
    fi
    cp "$corpora/$name"/* "$dir/corpus/" 2>/dev/null

    # shellcheck disable=SC2086
    TMPDIR=$dir/tmp \
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        ${RG_FUZZ_ARGS:-} "$dir/corpus" >"$dir/log" 2>&1
    rc=$?

    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: U/Sb ... exec/s: E ..."
    last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n 1)
    execs=$(printf '%s\n' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    speed=$(printf '%s\n' "$last" | sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p')
    findings=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' \
        -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l | tr -d ' ')

    if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
        status=FAIL
        failed=1
    else
        status=OK
    fi
    printf '%-24s %-4s execs=%s cov=%s ft=%s corp=%s exec/s=%s findings=%s\n' \
        "fuzz_$name" "$status" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
        "${speed:-?}" "$findings"
    if [ "$status" = FAIL ]; then
        echo "  exit status $rc; log: $dir/log"
        for a in "$dir"/artifacts/*; do
            [ -f "$a" ] && echo "  reproducer: $a"
        done
        # the sanitizer's or libFuzzer's own account of what happened
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error:|==[0-9]+== ERROR: libFuzzer)' \
            "$dir/log" | head -n 5 | sed 's/^/  /'
    fi
done

if [ "$failed" -eq 0 ] && [ "${RG_FUZZ_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    echo "run-fuzzers: work directory kept: $work"
fi
exit "$failed"
