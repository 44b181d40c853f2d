#!/usr/bin/perl
# Summary of a valgrind run of the pg_regress suite (test/valgrind/run.sh):
# per-test results, the errors whose stack has a credit_risk.so frame, the
# other unsuppressed errors, and the suppressed noise.  Exit status 1 when a
# test did not pass or valgrind reported any unsuppressed error.
#
# Reads the valgrind logs (one per process, vg.PID.log, written with
# --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END --show-error-list=yes
# --time-stamp=yes --gen-suppressions=all), the server log (log_line_prefix
# '%m [%p] %b %a ', log_connections) and run.sh's table of tests.
use strict;
use warnings;
use Getopt::Long;
use File::Basename;

my ($vgdir, $server_log, $tests_tsv, $srcdir, $vg_start, $run_start, $workdir);
GetOptions(
	'vgdir=s' => \$vgdir,
	'server-log=s' => \$server_log,
	'tests=s' => \$tests_tsv,
	'src=s' => \$srcdir,
	'vg-start=s' => \$vg_start,
	'run-start=s' => \$run_start,
	'workdir=s' => \$workdir) or die "summarize: bad arguments\n";
die "summarize: --vgdir, --server-log, --tests, --src and --vg-start are required\n"
  unless $vgdir && $server_log && $tests_tsv && $srcdir && defined $vg_start;

# Our frames: run.sh passes --fullpath-after=BUILD/, so our sources print as
# "(src/gbm.c:123)"; without debug info a frame prints "(in .../credit_risk.so)".
my %ours = map { basename($_) => 1 } glob("$srcdir/*.[ch]");
sub is_our_frame
{
	my ($line) = @_;
	return 1 if $line =~ /\(in [^)]*credit_risk\.so\)/;
	return 1 if $line =~ /\(src\/([^\/:]+):\d+\)$/ && $ours{$1};
	return 0;
}

# Tests and their wall-clock windows.
my @tests;
open(my $tfh, '<', $tests_tsv) or die "summarize: $tests_tsv: $!\n";
<$tfh>;
while (<$tfh>)
{
	chomp;
	my ($name, $result, $ms, $start, $end) = split /\t/;
	push @tests, { name => $name, result => $result, ms => $ms, start => $start, end => $end };
}
close $tfh;

# Which test (or which kind of process) each pid was, from the server log.
my (%pid_test, %pid_type, @server_events, $shutting_down);
open(my $sfh, '<', $server_log) or die "summarize: $server_log: $!\n";
while (<$sfh>)
{
	# processes the postmaster saw end badly (with run.sh's
	# --error-exitcode=1, a background worker that valgrind reported errors
	# in ends with status 1)
	$shutting_down = 1 if /received (fast|smart|immediate) shutdown request/;
	# PostgreSQL 15's launcher always leaves with status 1 at shutdown
	next if $shutting_down && /"logical replication launcher" \(PID \d+\) exited with exit code 1$/;
	push @server_events, $_
	  if /terminated by signal|exited with exit code|terminated by exception|PANIC:|abnormal database system shutdown/;
	next unless /^\S+ \S+ \S+ \[(\d+)\] (.*?)  ?(?:LOG|FATAL|ERROR|WARNING|PANIC|DEBUG\d|NOTICE|INFO|DETAIL|HINT|STATEMENT|CONTEXT):/;
	my ($pid, $rest) = ($1, $2);
	if (/connection authorized: .* application_name=(\S+)/)
	{
		my $app = $1;
		$pid_test{$pid} = $app =~ m{^pg_regress/(.+)} ? $1
		  : $app eq 'pg_regress' ? 'pg_regress (database setup)'
		  : "client $app";
	}
	$pid_type{$2} //= $1 if /background worker "([^"]+)" \(PID (\d+)\)/;
	$pid_type{$pid} //= $1 if $rest =~ /^(client backend|parallel worker|autovacuum worker|autovacuum launcher|postmaster|startup|checkpointer|background writer|walwriter|logical replication launcher|archiver|pg_cron launcher|pg_cron scheduler)\b/;
}
close $sfh;

sub test_at
{
	my ($t) = @_;
	for my $test (@tests)
	{
		return $test->{name} if $t >= $test->{start} && $t <= $test->{end};
	}
	return 'no test';
}

# Where an error block's description of the memory involved starts: the
# lines before it are the kind of error and the erring stack.
my $description = qr/^ (Address |Uninitialised value was created|Block was alloc'd|.* is on thread )/;

# The kind of error and the erring stack without addresses, so that the
# same error in two processes, or on another chunk, has the same key.
sub error_key
{
	my @key;
	for my $l (@_)
	{
		last if $l =~ $description;
		(my $k = $l) =~ s/0x[0-9A-Fa-f]+/0x?/g;
		$k =~ s/\s+$//;
		push @key, $k;
	}
	return join("\n", @key);
}

sub elapsed_seconds
{
	my ($stamp) = @_;
	my ($d, $h, $m, $s) = split /:/, $stamp;
	return $d * 86400 + $h * 3600 + $m * 60 + $s;
}

my %errors;        # key -> { kind, text, ours, origin_ours, count, where{} }
my %supp_of;       # key -> the suppression valgrind generated for it
my %used_supp;     # suppression name -> count
my %signals;       # "pid text" for processes valgrind saw die of a signal
my @valgrind_warnings;
my ($processes, $suppressed_total, $reported_total) = (0, 0, 0);

for my $log (sort glob("$vgdir/vg.*.log"))
{
	my ($pid) = $log =~ /vg\.(\d+)\.log$/ or next;
	$processes++;
	open(my $fh, '<', $log) or die "summarize: $log: $!\n";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;

	my $after_summary = 0;    # past the first ERROR SUMMARY: the -s list
	my (@block, $in_block, $block_time, $context_count);
	my (%first_seen, @listed, $last_block_key);
	my ($summary_errors, $summary_suppressed);
	my $i = 0;
	while ($i < @lines)
	{
		my $line = $lines[$i++];
		if ($line =~ /^\{$/ && defined $last_block_key)
		{
			my @supp = ($line);
			while ($i < @lines)
			{
				my $s = $lines[$i++];
				push @supp, $s;
				last if $s eq '}';
			}
			$supp_of{$last_block_key} //= join("\n", @supp);
			$last_block_key = undef;
			next;
		}
		next unless $line =~ /^([=-])[=-](\d\d:\d\d:\d\d:\d\d\.\d+) \d+[=-][=-] ?(.*)$/;
		my ($marker, $stamp, $text) = ($1, $2, $3);

		if ($marker eq '-')
		{
			$used_supp{$2} += $1 if $text =~ /^used_suppression:\s+(\d+) (\S+)/;
			next;
		}
		if ($text eq 'VALGRINDERROR-BEGIN')
		{
			$in_block = 1;
			@block = ();
			$block_time = $vg_start + elapsed_seconds($stamp);
			next;
		}
		if ($text eq 'VALGRINDERROR-END')
		{
			$in_block = 0;
			pop @block while @block && $block[-1] =~ /^\s*$/;
			my $key = error_key(@block);
			if ($after_summary)
			{
				push @listed, [$key, $context_count // 1, [@block]];
			}
			else
			{
				$first_seen{$key} //= [$block_time, [@block]];
			}
			$last_block_key = $key;
			next;
		}
		if ($in_block)
		{
			push @block, $text;
			next;
		}
		if ($text =~ /^ERROR SUMMARY: (\d+) errors from \d+ contexts \(suppressed: (\d+) from \d+\)/)
		{
			($summary_errors, $summary_suppressed) = ($1, $2);
			$after_summary = 1;
			next;
		}
		if ($text =~ /^(\d+) errors in context \d+ of \d+:/)
		{
			$context_count = $1;
			next;
		}
		if ($text =~ /^Process terminating with default action of signal/)
		{
			my @sig = ($text);
			while ($i < @lines && $lines[$i] =~ /^==[^=]+== (.+)$/)
			{
				push @sig, $1;
				$i++;
			}
			$signals{$pid} = join("\n", @sig);
			next;
		}
		push @valgrind_warnings, "pid $pid: $text"
		  if $text =~ /^Warning:|unhandled instruction|valgrind: Unrecognised instruction/i;
	}

	# The exit list has the counts; a process that died without one still
	# reported each context once.
	my %count = map { $_->[0] => $_->[1] } @listed;
	for my $key (keys %count)
	{
		$first_seen{$key} //= [undef, (grep { $_->[0] eq $key } @listed)[0][2]];
	}
	for my $key (keys %first_seen)
	{
		my ($time, $block) = @{ $first_seen{$key} };
		my $n = $count{$key} // 1;
		my $e = $errors{$key} //= { kind => $block->[0], text => $block, count => 0, where => {} };
		$e->{count} += $n;
		$reported_total += $n;
		my $who = $pid_test{$pid};
		if (!defined $who)
		{
			$who = ($pid_type{$pid} // 'process') . ($time ? ' during ' . test_at($time) : '');
		}
		$e->{where}{"$who (pid $pid)"} += $n;

		# the erring stack is everything before the first block description
		my $in_stack = 1;
		for my $l (@$block[1 .. $#$block])
		{
			$in_stack = 0 if $l =~ $description;
			if (is_our_frame($l))
			{
				$e->{ours} = 1 if $in_stack;
				$e->{origin_ours} = 1 unless $in_stack;
			}
		}
	}
	$suppressed_total += $summary_suppressed // 0;
}

# ---- report
my $fail = 0;
print "\n== valgrind summary\n";
my $now = time;
printf "run time: %d s\n", $now - $run_start if defined $run_start;
printf "%-18s %-8s %10s %10s\n", 'test', 'result', 'pg_regress', 'wall';
my ($passed, $failed) = (0, 0);
for my $t (@tests)
{
	printf "%-18s %-8s %10s %9.1fs\n", $t->{name}, $t->{result},
	  $t->{ms} eq '-' ? '-' : "$t->{ms} ms", $t->{end} - $t->{start};
	if ($t->{result} eq 'ok') { $passed++ } else { $failed++ }
}
printf "%d tests run: %d passed, %d not passed%s\n", scalar(@tests), $passed, $failed,
  $failed && $workdir ? " (diffs and logs in $workdir/out)" : '';
$fail = 1 if $failed;
print "processes traced by valgrind: $processes (logs: $vgdir)\n";

sub print_error
{
	my ($n, $e) = @_;
	print "\n[$n] $e->{kind}: $e->{count} occurrence(s)\n";
	print "    in: ", join(', ', map { "$_ x$e->{where}{$_}" } sort keys %{ $e->{where} }), "\n";
	print map { "    $_\n" } @{ $e->{text} }[1 .. $#{ $e->{text} }];
}

my @keys = sort { $errors{$b}{count} <=> $errors{$a}{count} or $a cmp $b } keys %errors;
my @ours = grep { $errors{$_}{ours} } @keys;
my @origin = grep { !$errors{$_}{ours} && $errors{$_}{origin_ours} } @keys;
my @other = grep { !$errors{$_}{ours} && !$errors{$_}{origin_ours} } @keys;

printf "\n== errors with a credit_risk.so frame in the erring stack: %d distinct\n", scalar @ours;
my $n = 0;
print_error(++$n, $errors{$_}) for @ours;
printf "\n== errors elsewhere whose memory or origin is credit_risk.so's: %d distinct\n", scalar @origin;
print_error(++$n, $errors{$_}) for @origin;
printf "\n== other unsuppressed errors: %d distinct\n", scalar @other;
print_error(++$n, $errors{$_}) for @other;
$fail = 1 if %errors;

if (%errors)
{
	print "\n== suppressions valgrind generated for the errors above (review before adding any to postgres.supp)\n";
	print "$supp_of{$_}\n" for grep { defined $supp_of{$_} } @keys;
}

if (%signals)
{
	print "\n== processes valgrind saw die of a signal\n";
	for my $pid (sort { $a <=> $b } keys %signals)
	{
		my $who = $pid_test{$pid} // $pid_type{$pid} // 'process';
		print "pid $pid ($who):\n", map { "    $_\n" } split /\n/, $signals{$pid};
	}
}
if (@server_events)
{
	print "\n== server log: processes that ended badly\n";
	print @server_events;
}
if (@valgrind_warnings)
{
	my %seen;
	print "\n== valgrind warnings\n";
	print "$_\n" for grep { !$seen{$_}++ } @valgrind_warnings;
}

print "\n== suppressed (known PostgreSQL and library noise, test/valgrind/postgres.supp)\n";
print "$suppressed_total suppressed error(s)\n";
printf "  %6d  %s\n", $used_supp{$_}, $_ for sort { $used_supp{$b} <=> $used_supp{$a} } keys %used_supp;

printf "\n== totals: %d unsuppressed error(s) in %d distinct contexts (%d with a credit_risk.so frame, %d with a credit_risk.so origin, %d elsewhere); %d suppressed\n",
  $reported_total, scalar @keys, scalar @ours, scalar @origin, scalar @other, $suppressed_total;
print $fail ? "valgrind run: FAILED\n" : "valgrind run: clean\n";
exit $fail;
