# credit_risk_alertd against a local HTTP receiver on loopback: every alert
# reaches every channel that takes it once; a receiver that fails twice gets
# it on the third attempt; one that always fails is logged as failed after
# the retries; a restart of the daemon sends nothing twice; alerts raised
# while it was down are sent when it comes back; a server restart is
# survived.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrApps;
use CrCrashCheck;

my $root = $ENV{TESTDIR} || '.';
my $alertd = "$root/tools/alertd/credit_risk_alertd";
-x $alertd or BAIL_OUT("$alertd is not built (make)");
my $python = '/usr/bin/python3';
plan skip_all => "$python is not installed" unless -x $python;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $log = "$tmp/received.txt";

# the receiver: /ok answers 200, /slack 200, /flaky 500 twice then 200,
# /down always 503; each request's path and body, one line each, in $log
my $receiver = "$tmp/receiver.py";
open(my $fh, '>', $receiver) or die;
print $fh <<'PY';
import http.server, json, sys
log, port = sys.argv[1], int(sys.argv[2])
seen = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
        n = seen[self.path] = seen.get(self.path, 0) + 1
        code = 200
        if self.path == '/flaky' and n <= 2: code = 500
        if self.path == '/down': code = 503
        with open(log, 'a') as f:
            f.write(json.dumps({'path': self.path, 'code': code,
                                'type': self.headers.get('Content-Type'), 'body': json.loads(body)}) + '\n')
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()
PY
close($fh);
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $rh = IPC::Run::start([ $python, $receiver, $log, $http_port ]);

my $node = PostgreSQL::Test::Cluster->new('alerts');
$node->init;
$node->start;
$node->safe_psql('postgres', apps_sql(2000));
$node->safe_psql('postgres', qq{
	CREATE EXTENSION credit_risk;
	SELECT credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id"}');
	-- a rule that fires on every run
	INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity, model_name)
	VALUES ('auc_watch', 'auc', '<', 2, 'critical', 'pd');
	INSERT INTO credit_risk.alert_channels (name, kind, url) VALUES
	    ('ops', 'webhook', 'http://127.0.0.1:$http_port/ok'),
	    ('chat', 'slack', 'http://127.0.0.1:$http_port/slack');
	INSERT INTO credit_risk.alert_channels (name, kind, url, routing_key) VALUES
	    ('pager', 'pagerduty', 'http://127.0.0.1:$http_port/flaky', 'R0UT1NGKEY');
	INSERT INTO credit_risk.alert_channels (name, kind, url, min_severity) VALUES
	    ('dead', 'webhook', 'http://127.0.0.1:$http_port/down', 'critical'),
	    ('quiet', 'webhook', 'http://127.0.0.1:$http_port/ok', 'critical');
	UPDATE credit_risk.alert_channels SET enabled = false WHERE name = 'quiet';
});

my $conninfo = sprintf('host=%s port=%d dbname=postgres', $node->host, $node->port);
my ($dout, $derr) = ('', '');
my $daemon;

sub start_daemon
{
	$daemon = IPC::Run::start(
		[ $alertd, '--retries', '3', '--retry-delay', '100', '--poll', '1', '--timeout', '5', '--verbose', $conninfo ],
		'>', \$dout, '2>', \$derr);
}

sub stop_daemon
{
	$daemon->signal('TERM');
	$daemon->finish;
}

sub received
{
	return () unless -f $log;
	return map { $_ } split /\n/, slurp_file($log);
}

sub wait_for
{
	my ($what, $sql, $want) = @_;
	my $got = '';
	for (1 .. 300)
	{
		$got = $node->safe_psql('postgres', $sql);
		last if $got eq $want;
		usleep(100_000);
	}
	is($got, $want, $what);
}

sub monitor
{
	$node->safe_psql('postgres', q{SELECT credit_risk.cr_monitor('pd', 'apps', 'y')});
}

start_daemon();
monitor();
my $deliveries = q{SELECT string_agg(c.name || ':' || d.status || ':' || d.attempts || ':' || COALESCE(d.http_status::text, ''),
	',' ORDER BY c.name) FROM credit_risk.alert_deliveries d JOIN credit_risk.alert_channels c ON c.id = d.channel_id
	WHERE d.alert_id = (SELECT max(id) FROM credit_risk.alerts)};
wait_for('each channel is done with the alert: delivered at once, after two failures, or failed after three retries',
	$deliveries, 'chat:delivered:1:200,dead:failed:4:503,ops:delivered:1:200,pager:delivered:3:200');

my @lines = received();
my %by_path;
$by_path{ $_->{path} }++ for map { decode($_) } @lines;
is(join(',', map { "$_=$by_path{$_}" } sort keys %by_path), '/down=4,/flaky=3,/ok=1,/slack=1',
	'the receiver saw one POST each where it answered, three to the flaky one, four to the dead one');

# what each kind of channel was sent
my ($alert_id, $message, $version) = split /\|/, $node->safe_psql('postgres',
	q{SELECT a.id, a.message, r.model_version FROM credit_risk.alerts a JOIN credit_risk.monitoring_runs r ON r.id = a.run_id});
my @bodies = map { decode($_) } @lines;
my ($hook) = grep { $_->{path} eq '/ok' } @bodies;
is($hook->{type}, 'application/json', 'bodies are sent as application/json');
is($hook->{body}{alert_id}, $alert_id, 'the webhook body carries the alert id');
is($hook->{body}{model_version}, $version, '... the model version');
is($hook->{body}{severity}, 'critical', '... and the severity');
my ($chat) = grep { $_->{path} eq '/slack' } @bodies;
like($chat->{body}{text}, qr/^\[CRITICAL\] \Q$message\E/, 'the Slack body is its text');
my ($page) = grep { $_->{path} eq '/flaky' && $_->{code} == 200 } @bodies;
is($page->{body}{routing_key}, 'R0UT1NGKEY', 'PagerDuty gets its routing key');
is($page->{body}{event_action}, 'trigger', '... a trigger event');
is($page->{body}{payload}{severity}, 'critical', '... the severity');
like($page->{body}{dedup_key}, qr/^credit_risk:postgres:$alert_id$/, '... a dedup key per alert');
is($page->{body}{payload}{summary}, $message, '... and the message as its summary');

# a restart of the daemon sends nothing again
stop_daemon();
like($derr, qr/stopped/, 'the daemon stops on SIGTERM');
my $before = scalar(received());
start_daemon();
usleep(2_500_000);
is(scalar(received()), $before, 'a restarted daemon sends nothing twice');
stop_daemon();

# alerts raised while it was down go out when it is back, once each
monitor();
monitor();
start_daemon();
wait_for('the two alerts raised while the daemon was down are delivered',
	q{SELECT count(*) FROM credit_risk.alert_deliveries WHERE status = 'delivered' AND channel_id = (SELECT id FROM credit_risk.alert_channels WHERE name = 'ops')},
	'3');

# a server restart is survived
$node->restart;
monitor();
wait_for('an alert raised after a server restart is delivered',
	q{SELECT count(*) FROM credit_risk.alert_deliveries WHERE status = 'delivered' AND channel_id = (SELECT id FROM credit_risk.alert_channels WHERE name = 'ops')},
	'4');
wait_for('the watermark is the newest alert', q{SELECT alert_id = (SELECT max(id) FROM credit_risk.alerts) FROM credit_risk.alert_watermark}, 't');
stop_daemon();
like($derr, qr/connection lost; reconnecting/, 'the daemon noticed the server going away');
like($derr, qr/connection lost; reconnecting.*connected; listening on credit_risk_alerts/s, 'and connected again');

# every alert once per channel that takes it; none to the disabled channel
my %ok_ids;
my $dupes = 0;
for my $b (grep { $_->{path} eq '/ok' } map { decode($_) } received())
{
	$dupes++ if $ok_ids{ $b->{body}{alert_id} }++;
}
is(scalar(keys %ok_ids), 4, 'the webhook received each of the four alerts');
is($dupes, 0, 'and none twice (the disabled channel on the same url got none)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.alert_deliveries d JOIN credit_risk.alert_channels c ON c.id = d.channel_id WHERE c.name = 'quiet'}),
	'0', 'a disabled channel gets nothing');

# --once with a server that is not there: a clear exit
$node->stop;
my ($out, $err) = ('', '');
IPC::Run::run([ $alertd, '--once', $conninfo ], '>', \$out, '2>', \$err);
like($err, qr/cannot connect/, '--once without a server says it cannot connect');
$node->start;

$rh->kill_kill;
no_crashes($node);
$node->stop;
done_testing();

sub decode
{
	my ($line) = @_;
	require JSON::PP;
	return JSON::PP::decode_json($line);
}
