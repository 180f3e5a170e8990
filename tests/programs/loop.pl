# Holds a hash of 50,000 entries, prints "ready CHECKSUM", then "ok N" every 10 ms and
# "sum CHECKSUM" every 10th time.
use strict;
use warnings;

$| = 1;
my %table = map { $_ => $_ * 3 } 1 .. 50_000;

sub checksum {
    my $sum = 0;
    $sum += $_ * 7 + $table{$_} for keys %table;
    return $sum;
}

print "ready ", checksum(), "\n";
for (my $n = 1; ; $n++) {
    print "ok $n\n";
    print "sum ", checksum(), "\n" if $n % 10 == 0;
    select(undef, undef, undef, 0.01);
}
