#!/bin/bash
# contrib/install-check.sh [BUILDDIR] - "make install DESTDIR=..." into a
# scratch directory and check what lands there: the programs, one man page
# per program and file format (every doc/*.[158]), the samples, the notes,
# the systemd units (verified with systemd-analyze when it is there), and
# that no user was created (DESTDIR set: the post-install step is printed).
# Prints TAP; exit status 0 when every check passed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top}
dest=$(mktemp -d /tmp/regigate-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
n=0; failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }

# the build's own directories (the units name them)
mk() { sed -n "s|^$1 = ||p" "$build/Makefile" | head -1; }
prefix=$(mk prefix); PACKAGE_TARNAME=$(mk PACKAGE_TARNAME); exec_prefix=$(eval echo "$(mk exec_prefix)")
sbindir=$(eval echo "$(mk sbindir)"); bindir=$(eval echo "$(mk bindir)")
sysconfdir=$(eval echo "$(mk sysconfdir)"); datarootdir=$(eval echo "$(mk datarootdir)")
mandir=$(eval echo "$(mk mandir)"); docdir=$(eval echo "$(mk docdir)")
unitdir=$(eval echo "$(mk systemdsystemunitdir)")
: "$exec_prefix" "$datarootdir"

echo "1..9"
make -C "$build" install DESTDIR="$dest" > "$dest.log" 2>&1
ok $? "make install DESTDIR=$dest" || tail -20 "$dest.log" | sed 's/^/# /'
missing=""
for f in "$sbindir/regigated" "$sbindir/regigatectl" "$sbindir/regigate-provider" "$bindir/regigate-makecert"; do
    [ -x "$dest/$f" ] || missing="$missing $f"
done
[ -z "$missing" ]
ok $? "the programs are installed${missing:+ (missing:$missing)}"
missing=""
for page in "$top"/doc/*.[158]; do
    base=$(basename "$page"); sec=${base##*.}
    [ -f "$dest$mandir/man$sec/$base" ] || missing="$missing $base"
done
[ -z "$missing" ]
ok $? "every man page of doc/ is installed${missing:+ (missing:$missing)}"
progs_without_page=""
for p in regigated regigatectl regigate-provider regigate-makecert; do
    ls "$dest$mandir"/man*/"$p".[18] >/dev/null 2>&1 || progs_without_page="$progs_without_page $p"
done
[ -z "$progs_without_page" ] && [ -f "$dest$mandir/man5/regigate.conf.5" ] &&
    [ -f "$dest$mandir/man5/regigate-rules.5" ] && [ -f "$dest$mandir/man5/regigate-postfix.5" ]
ok $? "one man page per program and per file format${progs_without_page:+ (no page:$progs_without_page)}"
cmp -s "$dest$sysconfdir/regigate/regigate.conf.sample" "$top/contrib/regigate.conf" &&
    cmp -s "$dest$sysconfdir/regigate/provider.conf.sample" "$top/contrib/provider.conf" &&
    [ ! -e "$dest$sysconfdir/regigate/regigate.conf" ]
ok $? "samples in $sysconfdir/regigate as *.sample, no real configuration written"
doc=$dest$docdir
[ -f "$doc/README" ] && [ -f "$doc/logging.md" ] && [ -f "$doc/postfix-integration.md" ] &&
    [ -f "$doc/postfix/main.cf.fragment" ] && [ -f "$doc/postfix/master.cf.fragment" ]
ok $? "notes and Postfix fragments in the doc directory"
units=$dest$unitdir
grep -qx "ExecStart=$sbindir/regigated -f -c $sysconfdir/regigate/regigate.conf" "$units/regigated.service" &&
    grep -qx "ExecStart=$sbindir/regigate-provider -c $sysconfdir/regigate/provider.conf serve" "$units/regigate-provider.service" &&
    grep -qx "NoNewPrivileges=yes" "$units/regigated.service" && grep -qx "ProtectSystem=strict" "$units/regigated.service" &&
    grep -qx "ReadWritePaths=-/var/spool/regigate" "$units/regigated.service" &&
    grep -qx "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "$units/regigate-provider.service"
ok $? "systemd units with the installed paths and their hardening"
if command -v systemd-analyze >/dev/null 2>&1; then
    # the units name $sbindir: verify copies that point into DESTDIR
    mkdir -p "$dest/verify"
    for u in regigated regigate-provider; do
        sed "s|$sbindir/|$dest$sbindir/|g" "$units/$u.service" > "$dest/verify/$u.service"
    done
    out=$(cd "$dest/verify" && systemd-analyze verify --man=no regigated.service regigate-provider.service 2>&1)
    rc=$?
    [ $rc = 0 ] && ! printf '%s\n' "$out" | grep -q "\.service"
    ok $? "systemd-analyze verify accepts both units" || printf '%s\n' "$out" | sed 's/^/# /'
else
    n=$((n + 1)); echo "ok $n - # SKIP systemd-analyze not installed"
fi
grep -q "Post-install step (as root): useradd --system" "$dest.log" && ! grep -q "created the system user" "$dest.log"
ok $? "with DESTDIR no user is created; the post-install step is printed"
rm -f "$dest.log"
exit $((failed > 0))
