#!/usr/bin/perl
# t/helpers/slowrelay.pl - a TCP relay on 127.0.0.1 that slows down one
# direction of its first connection, for the fault tests.
#
#   slowrelay.pl LISTEN_PORT TARGET_PORT AFTER RATE
#
# Accepts connections on 127.0.0.1:LISTEN_PORT, one at a time, and relays
# each to 127.0.0.1:TARGET_PORT. On the first connection, once AFTER bytes
# have gone from the client to the target, the rest of that direction is
# passed at RATE bytes per second (in 20 slices per second); the target's
# answers always pass at once. Later connections are not slowed down.
# When either side closes, the other is closed too. Prints "ready" on
# stdout once it listens. Runs until killed.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep);

@ARGV == 4 or die "usage: $0 LISTEN_PORT TARGET_PORT AFTER RATE\n";
my ($lport, $tport, $after, $rate) = @ARGV;
my $slice = int($rate / 20) || 1;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $lport,
    Listen => 5, ReuseAddr => 1) or die "slowrelay: listen 127.0.0.1:$lport: $!\n";
$| = 1;
print "ready\n";

my $nconn = 0;
while (my $c = $srv->accept) {
    $nconn++;
    my $t = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $tport);
    if (!$t) { warn "slowrelay: connect 127.0.0.1:$tport: $!\n"; close $c; next; }
    relay($c, $t, $nconn == 1);
    close $c; close $t;
}

sub relay {
    my ($c, $t, $slow) = @_;
    my $sel = IO::Select->new($c, $t);
    my $sent = 0;
    for (;;) {
        for my $fh ($sel->can_read) {
            my $to = $fh == $c ? $t : $c;
            my $want = 65536;
            my $throttle = $slow && $fh == $c && $sent >= $after;
            $want = $slice if $throttle;
            my $n = sysread($fh, my $buf, $want);
            return if !$n;
            my $off = 0;
            while ($off < $n) {
                my $w = syswrite($to, $buf, $n - $off, $off);
                return if !defined $w;
                $off += $w;
            }
            if ($fh == $c) {
                $sent += $n;
                sleep(0.05) if $throttle;
            }
        }
    }
}
