#!/bin/sh
# t/rules/lint.sh - "regigatectl rules lint" on every t/rules/*.json (TAP).
#
# For each FILE.json: stderr must be FILE.expect byte for byte; the exit
# status is 1 when FILE.expect has an error line, else 0 with "FILE.json: ok"
# on stdout. Then the command's other paths: several files, stdin, a
# missing file, usage errors, and "rules show" against a configuration.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rglint.XXXXXX")

# `make check-valgrind` (RG_VALGRIND, RG_VG_LOGS; see t/integration/lib.sh):
# regigatectl runs under valgrind through a wrapper, and a log that counts
# an error ends the test with "Bail out!", as the other tests do
vg_reports() {
    [ -n "${RG_VALGRIND:-}" ] || return 1
    found=1
    for f in "$RG_VG_LOGS"/lint.vg.*; do
        [ -e "$f" ] || continue
        grep -Eq 'ERROR SUMMARY: [1-9]|impossible happened|Valgrind.* out of memory' "$f" || continue
        found=0; echo "# valgrind errors $f:"; sed 's/^/#   /' "$f" | head -120
    done
    return $found
}
if [ -n "${RG_VALGRIND:-}" ]; then
    : "${RG_VG_LOGS:=$top_builddir/vg-logs}"
    mkdir -p "$RG_VG_LOGS" && chmod 1777 "$RG_VG_LOGS"
    rm -f "$RG_VG_LOGS"/lint.vg.*
    printf '#!/bin/sh\nexec %s --log-file=%s/lint.vg.%%p %s "$@"\n' \
        "$RG_VALGRIND" "$RG_VG_LOGS" "$CTL" > "$TMP/regigatectl"
    chmod 755 "$TMP/regigatectl"
    CTL=$TMP/regigatectl
fi
trap 'rm -rf "$TMP"' EXIT

n=0
failed=0
ok() {  # ok STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
    fi
}
same() {  # same DESCRIPTION EXPECTED-FILE ACTUAL-FILE
    if cmp -s "$2" "$3"; then
        ok 0 "$1"
    else
        ok 1 "$1"
        diff -u "$2" "$3" | sed 's/^/# /'
    fi
}

cd "$top_srcdir/t/rules" || exit 1
cases=$(LC_ALL=C ls -- *.json)
ncases=$(echo "$cases" | wc -l)
echo "1..$((2 * ncases + 16))"

for f in $cases; do
    base=${f%.json}
    "$CTL" rules lint "$f" --lists-dir lists >"$TMP/out" 2>"$TMP/err"
    rc=$?
    same "$base: diagnostics" "$base.expect" "$TMP/err"
    if grep -q ': error: ' "$base.expect"; then
        [ "$rc" -eq 1 ] && [ ! -s "$TMP/out" ]
        ok $? "$base: exit 1 (got $rc), nothing on stdout"
    else
        [ "$rc" -eq 0 ] && [ "$(cat "$TMP/out")" = "$f: ok" ]
        ok $? "$base: exit 0 (got $rc) and \"$f: ok\""
    fi
done

# several files: each is checked, the status is 1 when one has errors
rc=$("$CTL" rules lint empty.json unknown_op.json example_subject.json --lists-dir=lists \
     >"$TMP/out" 2>"$TMP/err"; echo $?)
[ "$rc" -eq 1 ]; ok $? "several files: exit 1 (got $rc)"
printf 'empty.json: ok\nexample_subject.json: ok\n' >"$TMP/want"
same "several files: the valid ones are ok" "$TMP/want" "$TMP/out"
same "several files: the errors of the bad one" unknown_op.expect "$TMP/err"

# stdin
"$CTL" rules lint - <example_internal.json --lists-dir lists >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && [ "$(cat "$TMP/out")" = "-: ok" ] && [ ! -s "$TMP/err" ]
ok $? "stdin (-): ok"
"$CTL" rules lint - <literal.json >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && [ "$(cat "$TMP/err")" = "$(sed 's/^literal.json:/-:/' literal.expect)" ]
ok $? "stdin (-): errors are reported as -:LINE:COL"

# a missing file, a directory
"$CTL" rules lint no-such.json >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && [ "$(cat "$TMP/err")" = "no-such.json: error: cannot open: No such file or directory" ]
ok $? "missing file: FILE: error: cannot open"
"$CTL" rules lint lists >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && [ "$(cat "$TMP/err")" = "lists: error: cannot read: Is a directory" ]
ok $? "a directory: FILE: error: cannot read"

# without --lists-dir, a rule set that uses lists cannot be checked fully
"$CTL" rules lint example_blocklist.json >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q '^example_blocklist.json:5:70: error: list "blocked": no lists directory given$' "$TMP/err"
ok $? "no --lists-dir: in-list is an error at the list's name"

# usage errors: exit 2
"$CTL" rules lint >/dev/null 2>&1
[ $? -eq 2 ]; ok $? "rules lint without a file: exit 2"
"$CTL" rules lint --bogus empty.json >/dev/null 2>&1
[ $? -eq 2 ]; ok $? "rules lint --bogus: exit 2"
"$CTL" rules frobnicate >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q 'regigatectl rules lint' "$TMP/err"
ok $? "unknown verb: exit 2, the group's commands listed"
"$CTL" >/dev/null 2>&1
[ $? -eq 2 ]; ok $? "no command: exit 2"

# rules show: the file of the route as configured; {} without one
abs=$(pwd)
cat >"$TMP/regigate.conf" <<EOF
[route out]
listen = 127.0.0.1:10025
reinject = 127.0.0.1:10026
rules = $abs/example_partners.json
lists_dir = $abs/lists

[route in]
listen = 127.0.0.1:10027
reinject = 127.0.0.1:10028
EOF
"$CTL" -c "$TMP/regigate.conf" rules show out >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && [ ! -s "$TMP/err" ]; ok $? "rules show out: exit 0"
same "rules show out: the rule file byte for byte" example_partners.json "$TMP/out"
"$CTL" -c "$TMP/regigate.conf" rules show in >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && [ "$(cat "$TMP/out")" = "{}" ]; ok $? "rules show in (no rules): {}"
"$CTL" -c "$TMP/regigate.conf" rules show nowhere >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q 'no route "nowhere"' "$TMP/err"
ok $? "rules show of an unknown route: exit 1"

[ "$n" -eq $((2 * ncases + 16)) ] || echo "# ran $n tests"
if vg_reports; then
    echo "Bail out! lint: valgrind reports (above)"
    exit 1
fi
exit 0
