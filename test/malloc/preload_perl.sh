#!/usr/bin/env bash
# Debian's perl (perl-base, on every Debian system): a big hash of short strings built, sorted,
# thinned and rebuilt, strings grown by appends and repeats, regexes, split/join, sprintf, pack,
# Storable freeze/thaw of deep structures, and ithreads (each thread a clone of the interpreter,
# its data freed by another thread at join). Short strings are the case where a block handed out
# with its free-list link still in the first word sent every realloc and free through a search of
# the page's free blocks (4x glibc's CPU time; test malloc.api.handout_link).
source "$(dirname "$0")/preload_common.sh"
need perl md5sum
KEYS=${HK_PERL_KEYS:-200000}
perl -Mthreads -e 1 2>/dev/null || skip "perl has no ithreads (threads.pm)"
perl -MStorable -e 1 2>/dev/null || skip "perl has no Storable"
cat > "$TMP/work.pl" <<'EOS'
use strict; use warnings; use threads; use Storable qw(freeze thaw); use Digest::MD5 qw(md5_hex);
my $n = shift;
srand(42);
my %h;
for my $i (1 .. $n) { $h{"key$i"} = [$i, "v" x ($i % 50), { n => $i % 7 }]; }
my $sum = 0; my $ctx = Digest::MD5->new;
for my $k (sort keys %h) { $sum += $h{$k}[0]; $ctx->add($k, length $h{$k}[1]); }
print "hash $sum ", $ctx->hexdigest, "\n";
delete $h{"key$_"} for grep { $_ % 3 } 1 .. $n;
my @a = map { join(",", reverse split //, $_) } sort keys %h;
print "thinned ", scalar(@a), " ", md5_hex(join ";", @a[0 .. 999]), "\n";
my $s = ""; $s .= chr(65 + $_ % 26) . ($_ % 10 ? "" : "\n") for 1 .. 1_000_000;
my @w = ($s =~ /([A-E]+)/g);
(my $t = $s) =~ s/([KLM])/lc($1) x 3/ge;
print "strings ", length($s), " ", scalar(@w), " ", length($t), " ", md5_hex($t), "\n";
my @rows = map { sprintf("%08d|%s|%.3f", $_, "x" x ($_ % 17), $_ / 7) } 1 .. 100_000;
my $packed = pack("(A*)*", @rows);
print "rows ", md5_hex(join "\n", sort { (split /\|/, $b)[2] <=> (split /\|/, $a)[2] } @rows[0 .. 20_000]), " ", length $packed, "\n";
my $deep = { map { ("k$_" => [map { { v => "s" x $_, l => [1 .. $_ % 20] } } 1 .. 20]) } 1 .. 2000 };
my $copy = thaw(freeze($deep));
my $c = 0; for my $k (sort keys %$copy) { $c += length($_->{v}) + @{ $_->{l} } for @{ $copy->{$k} } }
print "storable $c\n";
my @thr = map { my $id = $_; threads->create(sub {
  my %g; for my $i (1 .. 40_000) { $g{"t$id-$i"} = "y" x ($i % 33); }
  my $str = join ",", map { "$_=$g{$_}" } sort keys %g;
  delete $g{"t$id-$_"} for 1 .. 20_000;
  return (md5_hex($str), scalar keys %g, \%g);
}) } 1 .. 4;
for my $t (@thr) { my ($d, $k, $g) = $t->join; print "thread $d $k ", scalar(keys %$g), "\n"; }
EOS
run_compare perl p perl "$TMP/work.pl" "$KEYS"
echo "$name: ok"
