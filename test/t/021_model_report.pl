# cr_model_report looked at as a person would: the page is rendered by
# headless Chromium (Debian's chromium) to a PNG and to its DOM, and the DOM
# is checked for every section, for charts with their axes labelled and
# their marks (the ROC path has a point per threshold it claims, the
# calibration ten groups), and for user text shown as text: a feature named
# <script>alert(1)</script> and a source query with markup in it.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use CrGerman;

my $chromium = '/usr/bin/chromium';
plan skip_all => "$chromium is not installed (Debian package chromium)" unless -x $chromium;

my $tmp  = PostgreSQL::Test::Utils::tempdir('report');
my $node = PostgreSQL::Test::Cluster->new('report');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');
load_german_raw($node);
$node->safe_psql(
	'postgres', q{
ALTER TABLE german_raw RENAME COLUMN purpose TO "<script>alert(1)</script>";
SELECT 1 FROM credit_risk.cr_train('card', 'german_raw', 'bad', 'scorecard',
    ARRAY['checking', 'duration', 'history', '<script>alert(1)</script>', 'amount', 'savings', 'age'],
    '{"holdout": 0.3, "seed": 7, "key": "id", "min_category_count": 1, "calibration": "platt"}');
SELECT 1 FROM credit_risk.cr_train('trees', 'german_raw', 'bad', 'gbm',
    ARRAY['checking', 'duration', 'amount', 'age'],
    '{"holdout": 0, "n_trees": 20, "max_depth": 3, "threads": 1}');
INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity, model_name, group_column)
VALUES ('four_fifths', 'min_adverse_impact_ratio', '<', 0.8, 'warning', 'card', 'personal');
SET client_min_messages = warning;
SELECT 1 FROM credit_risk.cr_monitor('card', 'german_raw', 'bad');
});

# the page as a DOM and as a picture
sub render
{
	my ($name, $html) = @_;
	my $file = "$tmp/$name.html";
	open(my $fh, '>:raw', $file) or die;
	print $fh $html;
	close $fh;
	local $ENV{HOME} = $tmp;
	my @common = ('--headless', '--no-sandbox', '--disable-gpu', "--user-data-dir=$tmp/chrome-$name",
		'--window-size=1200,5000');
	my ($dom, $err) = ('', '');
	IPC::Run::run([ $chromium, @common, '--dump-dom', "file://$file" ], '>', \$dom, '2>', \$err,
		IPC::Run::timeout(120))
	  or die "chromium --dump-dom failed: $err";
	my ($out, $err2) = ('', '');
	IPC::Run::run([ $chromium, @common, "--screenshot=$tmp/$name.png", "file://$file" ],
		'>', \$out, '2>', \$err2, IPC::Run::timeout(120))
	  or die "chromium --screenshot failed: $err2";
	return $dom;
}

my $source = q{SELECT * FROM german_raw WHERE id > 0 /* <b>not bold</b> */};
(my $src_lit = $source) =~ s/'/''/g;
my $html = $node->safe_psql('postgres',
	"SELECT credit_risk.cr_model_report('card', NULL, '$src_lit')");
my $dom = render('card', $html);

for my $section (qw(identity metrics evaluation roc ks distribution calibration model drift fairness limitations))
{
	like($dom, qr/<section id="$section">/, "the page has its $section section");
}
unlike($dom, qr/<script/i, 'the page has no script element');
like($dom, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'a feature named <script>alert(1)</script> is shown as text');
like($dom, qr/&lt;b&gt;not bold&lt;\/b&gt;/, 'markup in the source is shown as text');
unlike($dom, qr/<b>not bold/, '... and is not markup');

# the ROC path: one point per threshold it claims, plus the origin
my ($thresholds, $points) = $dom =~ /<polyline class="roc" data-thresholds="(\d+)" points="([^"]*)"/;
ok(defined $thresholds, 'the ROC chart has its path');
my @pts = split ' ', $points // '';
is(scalar(@pts), $thresholds + 1, "the ROC path has a point for each of its $thresholds thresholds and the origin");
my ($claimed) = $dom =~ /<span class="thresholds">(\d+)<\/span>/;
is($claimed, $thresholds, 'the text claims as many thresholds as the path draws');
# it starts at the origin (bottom left) and ends at (1, 1) (top right)
is($pts[0], '60.00,310.00', 'the ROC path starts at (0, 0)');
is($pts[-1], '500.00,20.00', 'the ROC path ends at (1, 1)');

# every chart has its two axis labels, with text
my @charts = $dom =~ /(<svg class="chart".*?<\/svg>)/gs;
is(scalar(@charts), 4, 'four charts: ROC, KS, distribution, calibration');
my $labelled = grep { my @l = /<text class="axis-label [xy]"[^>]*>([^<]+)<\/text>/g; @l == 2 } @charts;
is($labelled, 4, 'every chart has an x and a y axis label');
my ($ks) = grep { /id="ks-chart"/ } @charts;
my @ks_lines = $ks =~ /<polyline class="(goods|bads)" data-points="(\d+)" points="([^"]*)"/g;
my $ks_ok = @ks_lines == 6;
for (my $i = 0; $i < @ks_lines; $i += 3)
{
	my @p = split ' ', $ks_lines[ $i + 2 ];
	$ks_ok &&= @p == $ks_lines[ $i + 1 ] && @p > 10;
}
ok($ks_ok, 'the KS chart has a goods and a defaults curve, each with as many points as it claims');
my ($cal) = grep { /id="calibration-chart"/ } @charts;
is(scalar(() = $cal =~ /<circle class="group"/g), 10, 'the calibration chart has ten groups');
my ($dist) = grep { /id="distribution-chart"/ } @charts;
is(scalar(() = $dist =~ /<rect class="bar (goods|bads)"/g), 40, 'the distribution has 20 bars for each class');

# the scorecard's bins, drift and fairness from the monitoring run
like($dom, qr/<section id="model">.*<th>WoE<\/th>/s, 'the model section shows the scorecard bins');
like($dom, qr/<svg class="bars" id="psi-chart"/, 'drift: PSI per feature as bars');
like($dom, qr/<section id="fairness">.*<td>personal<\/td><td>A9[1-4]<\/td>/s, 'fairness: the groups of the rule\'s column');
like($dom, qr/calibration<\/th><td>platt/, 'the identity table names the calibration');

ok(-s "$tmp/card.png" > 50000, 'Chromium drew the page (' . (-s "$tmp/card.png") . ' bytes of PNG)');

# a tree model without a holdout and without a source: the page says what is missing
my $dom2 = render('trees', $node->safe_psql('postgres', q{SELECT credit_risk.cr_model_report('trees')}));
like($dom2, qr/<section id="roc">.*class="missing"/s, 'without a source the curves are missing, with the reason');
unlike($dom2, qr/<polyline class="roc"/, '... and no ROC path is drawn');
like($dom2, qr/measured on the training rows/, 'metrics without a holdout are called flattering');
like($dom2, qr/<svg class="bars" id="importance-chart"/, 'trees: the split gain per feature as bars');
like($dom2, qr/No monitoring run/, 'no monitoring run yet: said so');

# bad input
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT credit_risk.cr_model_report('nope')});
like($err, qr/model "nope" does not exist/, 'an unknown model is an error');
($rc, $out, $err) = $node->psql('postgres',
	q{SELECT credit_risk.cr_model_report('card', NULL, 'SELECT 1 AS x')});
like($err, qr/does not exist in the source|column/, 'a source without the features is an error');
($rc, $out, $err) = $node->psql('postgres',
	q{SELECT credit_risk.cr_model_report('card', NULL, 'SELECT * FROM german_raw WHERE bad = 1')});
is($rc, 0, 'a source of one class gives a page');
like($out, qr/of one class/, '... that says no curve can be drawn');

no_crashes($node);
$node->stop;
done_testing();
