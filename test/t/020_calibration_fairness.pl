# cr_calibration, cr_fairness and isotonic calibration against scipy and
# scikit-learn: the
# Hosmer-Lemeshow statistic and its chi-square p-value, the binomial and
# Jeffreys tests per risk category, and per group the approval rates,
# adverse impact ratios, default rates, AUC and standardized mean
# differences, recomputed in Python from the scores cr_predict_batch gives
# every row.  Models: a logistic and a tree model on the raw German credit
# file; sources: every row, and a skewed subset on which the PDs are far
# too low (tiny p-values, where a tail computed badly would show).

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use CrGerman;

my $python = '/usr/bin/python3';
{
	my ($out, $err) = ('', '');
	my $ok = -x $python
	  && eval {
		IPC::Run::run([ $python, '-c', 'import numpy, scipy.stats, sklearn.metrics' ],
			'>', \$out, '2>', \$err);
	  };
	plan skip_all => "$python cannot import numpy, scipy and sklearn" unless $ok;
}

my $tmp  = PostgreSQL::Test::Utils::tempdir('calibration');
my $node = PostgreSQL::Test::Cluster->new('calibration');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');
load_german_raw($node);
$node->safe_psql(
	'postgres', q{
ALTER TABLE german_raw ADD COLUMN bad_partly int;
UPDATE german_raw SET bad_partly = CASE WHEN id % 7 = 0 THEN NULL ELSE bad END;
SELECT 1 FROM credit_risk.cr_train('cal_lr', 'german_raw', 'bad', 'logistic',
    ARRAY['duration', 'amount', 'age', 'checking', 'history', 'savings'], '{"holdout": 0.3, "seed": 7}');
SELECT 1 FROM credit_risk.cr_train('cal_gbm', 'german_raw', 'bad', 'gbm',
    ARRAY['duration', 'amount', 'age', 'installment_rate'],
    '{"holdout": 0.3, "seed": 7, "n_trees": 30, "max_depth": 3, "threads": 1}');
});

my $reference = <<'PY';
import json
import sys

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

rows = json.load(open(sys.argv[1]))
bins = int(sys.argv[2])
pd_ = np.array([r['pd'] for r in rows])
y = np.array([r['bad'] for r in rows], dtype=float)
out = {}

# Hosmer-Lemeshow over equal-count groups in PD order (ties in row order)
order = np.argsort(pd_, kind='mergesort')
n = len(rows)
hl = 0.0
groups = []
for g in range(bins):
    idx = order[int(g * n / bins):int((g + 1) * n / bins)]
    o, e, m = y[idx].sum(), pd_[idx].sum(), len(idx)
    term = (o - e) ** 2 / (e * (1 - e / m))
    hl += term
    groups.append([m, int(o), e / m, term])
out['reliability'] = groups
out['hl'] = [hl, stats.chi2.sf(hl, bins - 2)]

# per risk category: P(X >= d), and the Jeffreys posterior at the mean PD
cats = {}
for c in sorted(set(r['category'] for r in rows)):
    sel = np.array([r['category'] == c for r in rows])
    m, d, mean = int(sel.sum()), int(y[sel].sum()), pd_[sel].mean()
    cats[c] = [m, d, stats.binom.sf(d - 1, m, mean), stats.beta.cdf(mean, d + 0.5, m - d + 0.5)]
out['categories'] = cats

# fairness by group: approved = the first risk category
fair = {}
score = np.array([r['score'] for r in rows], dtype=float)
for g in sorted(set(r['grp'] for r in rows if r['grp'] is not None)):
    sel = np.array([r['grp'] == g for r in rows])
    lab = sel & np.array([r['label'] is not None for r in rows])
    yl = np.array([r['label'] for r, s in zip(rows, lab) if s], dtype=float)
    auc = roc_auc_score(yl, pd_[lab]) if 0 < yl.sum() < len(yl) else None
    fair[g] = {'n': int(sel.sum()),
               'approved': int(sum(1 for r, s in zip(rows, sel) if s and r['category'] == 'low')),
               'mean_pd': pd_[sel].mean(),
               'labelled': int(lab.sum()),
               'default_rate': yl.mean() if len(yl) else None,
               'auc': auc,
               'score_mean': score[sel].mean(),
               'score_var': score[sel].var(ddof=1)}
rates = {g: v['approved'] / v['n'] for g, v in fair.items()}
ref = max(fair, key=lambda g: (rates[g], fair[g]['n']))
for g, v in fair.items():
    v['air'] = rates[g] / rates[ref]
    v['smd'] = (v['score_mean'] - fair[ref]['score_mean']) / np.sqrt((v['score_var'] + fair[ref]['score_var']) / 2)
    v['reference'] = g == ref
out['fairness'] = fair
json.dump(out, sys.stdout)
PY
open(my $fh, '>', "$tmp/reference.py") or die;
print $fh $reference;
close $fh;

sub close_enough
{
	my ($got, $want, $rtol) = @_;
	return 0 unless defined $got && defined $want;
	return abs($got - $want) <= $rtol * abs($want) + 1e-300;
}

my $rtol = 1e-9;
for my $case ([ 'cal_lr', 'german_raw', 10 ],
	[ 'cal_gbm', 'german_raw', 7 ],
	[ 'cal_lr', 'SELECT * FROM german_raw WHERE bad = 1 OR id % 4 = 0', 10 ])
{
	my ($model, $source, $bins) = @$case;
	my $what = "$model on " . ($source eq 'german_raw' ? 'every row' : 'the skewed rows') . " in $bins bins";
	my $query = $source =~ /^SELECT/ ? $source : "SELECT * FROM $source";
	my $src_lit = $source;
	$src_lit =~ s/'/''/g;

	# every row's PD, category and score, in source order, with its labels and group
	my $json = $node->safe_psql('postgres', qq{
SELECT json_agg(json_build_object('pd', b.default_probability, 'category', b.risk_category,
                                  'score', b.score, 'bad', s.bad, 'label', s.bad_partly,
                                  'grp', s.personal) ORDER BY b.ord)
  FROM (SELECT row_number() OVER () AS ord, * FROM credit_risk.cr_predict_batch('$model', '$src_lit', 'id')) b
  JOIN ($query) s ON s.id = b.key::bigint});
	open(my $rf, '>', "$tmp/rows.json") or die;
	print $rf $json;
	close $rf;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $python, "$tmp/reference.py", "$tmp/rows.json", $bins ], '>', \$out, '2>', \$err)
	  or die "reference failed: $err";
	my $ref = decode_json($out);

	# calibration
	my @cal = map { [ split /\|/, $_, -1 ] } split /\n/, $node->safe_psql('postgres', qq{
SELECT section, coalesce(band, ''), n, defaults, mean_pd, coalesce(statistic::text, ''), coalesce(p_value::text, '')
  FROM credit_risk.cr_calibration('$model', '$src_lit', 'bad', NULL, $bins)});
	my @rel = grep { $_->[0] eq 'reliability' } @cal;
	is(scalar @rel, $bins, "$what: a reliability row per group");
	my $ok = 1;
	for my $g (0 .. $#rel)
	{
		my ($n, $d, $mean, $term) = @{ $ref->{reliability}[$g] };
		$ok &&= $rel[$g][2] == $n && $rel[$g][3] == $d
		  && close_enough($rel[$g][4], $mean, $rtol) && close_enough($rel[$g][5], $term, 1e-7);
		diag("group $g: got @{$rel[$g]}, want $n $d $mean $term") unless $ok;
	}
	ok($ok, "$what: each group's rows, defaults, mean PD and Hosmer-Lemeshow term");
	my ($hl) = grep { $_->[0] eq 'hosmer_lemeshow' } @cal;
	ok(close_enough($hl->[5], $ref->{hl}[0], 1e-9) && close_enough($hl->[6], $ref->{hl}[1], 1e-7),
		"$what: Hosmer-Lemeshow $hl->[5] (p $hl->[6]) as scipy's $ref->{hl}[0] (p $ref->{hl}[1])");

	for my $test ('binomial', 'jeffreys')
	{
		my @rows = grep { $_->[0] eq $test } @cal;
		my $good = scalar(@rows) == scalar(keys %{ $ref->{categories} });
		for my $r (@rows)
		{
			my $want = $ref->{categories}{ $r->[1] };
			my $p = $test eq 'binomial' ? $want->[2] : $want->[3];
			$good &&= $r->[2] == $want->[0] && $r->[3] == $want->[1] && close_enough($r->[6], $p, $rtol);
			diag("$test $r->[1]: got n $r->[2] d $r->[3] p $r->[6], want @$want") unless $good;
		}
		ok($good, "$what: the $test test of each risk category as scipy's ("
			  . join(', ', map { "$_->[1] $_->[6]" } @rows) . ')');
	}

	# fairness, by the applicants' personal status code, labels on six rows in seven
	my @fair = map { [ split /\|/, $_, -1 ] } split /\n/, $node->safe_psql('postgres', qq{
SELECT group_value, n, approved, adverse_impact_ratio, mean_pd, labelled,
       coalesce(default_rate::text, ''), coalesce(auc::text, ''), smd, reference
  FROM credit_risk.cr_fairness('$model', '$src_lit', 'personal', '{"label": "bad_partly"}')});
	my $fok = scalar(@fair) == scalar(keys %{ $ref->{fairness} });
	for my $f (@fair)
	{
		my $w = $ref->{fairness}{ $f->[0] };
		$fok &&= $f->[1] == $w->{n} && $f->[2] == $w->{approved}
		  && close_enough($f->[3], $w->{air}, $rtol)
		  && close_enough($f->[4], $w->{mean_pd}, $rtol)
		  && $f->[5] == $w->{labelled}
		  && close_enough($f->[6], $w->{default_rate}, $rtol)
		  && (defined $w->{auc} ? close_enough($f->[7], $w->{auc}, $rtol) : $f->[7] eq '')
		  && (abs($f->[8] - $w->{smd}) <= 1e-9)
		  && (($f->[9] eq 't') == ($w->{reference} ? 1 : 0));
		diag("group $f->[0]: got @$f, want " . encode_json($w)) unless $fok;
	}
	ok($fok, "$what: per group rows, approvals, adverse impact ratio, mean PD, default rate, AUC and SMD as computed in Python");
}

# params.calibration = 'isotonic' against scikit-learn's IsotonicRegression
# (out_of_bounds="clip") fitted on the same holdout rows' uncalibrated PDs:
# every applicant's calibrated PD
$node->safe_psql('postgres', q{
SELECT 1 FROM credit_risk.cr_train('iso_plain', 'german_raw', 'bad', 'gbm',
    ARRAY['duration', 'amount', 'age', 'installment_rate'],
    '{"holdout": 0.3, "seed": 7, "key": "id", "n_trees": 30, "max_depth": 3, "threads": 1}');
SELECT 1 FROM credit_risk.cr_train('iso_cal', 'german_raw', 'bad', 'gbm',
    ARRAY['duration', 'amount', 'age', 'installment_rate'],
    '{"holdout": 0.3, "seed": 7, "key": "id", "n_trees": 30, "max_depth": 3, "threads": 1,
      "calibration": "isotonic"}');
});
my $iso_rows = $node->safe_psql('postgres', q{
SELECT json_agg(json_build_object('p', credit_risk.cr_predict('iso_plain', g),
                                  'q', credit_risk.cr_predict('iso_cal', g), 'y', g.bad,
                                  'hold', credit_risk.cr_in_holdout(g.id, 7, 0.3)) ORDER BY g.id)
  FROM german_raw g});
open(my $if, '>', "$tmp/iso.json") or die;
print $if $iso_rows;
close $if;
my ($iso_out, $iso_err) = ('', '');
IPC::Run::run([ $python, '-c', q{
import json, sys
import numpy as np
from sklearn.isotonic import IsotonicRegression
rows = json.load(open(sys.argv[1]))
hold = [r for r in rows if r['hold']]
iso = IsotonicRegression(out_of_bounds='clip').fit([r['p'] for r in hold], [r['y'] for r in hold])
want = iso.predict([r['p'] for r in rows])
got = np.array([r['q'] for r in rows])
print(len(hold), len(rows), float(np.max(np.abs(got - want))))
}, "$tmp/iso.json" ], '>', \$iso_out, '2>', \$iso_err) or die "isotonic reference failed: $iso_err";
my ($nhold, $nall, $iso_diff) = split ' ', $iso_out;
ok($nhold > 200 && $nall == 1000 && $iso_diff < 1e-12,
	"isotonic calibration: every applicant's PD as scikit-learn's IsotonicRegression fitted on the $nhold holdout rows (largest difference $iso_diff)");

# the skewed source: the PDs are far too low, so every test says so
my $low = $node->safe_psql('postgres', q{
SELECT bool_and(p_value < 1e-6) FROM credit_risk.cr_calibration('cal_lr',
    'SELECT * FROM german_raw WHERE bad = 1 OR id % 4 = 0', 'bad')
 WHERE section IN ('hosmer_lemeshow', 'binomial', 'jeffreys')});
is($low, 't', 'PDs far below the observed rates: every test has a tiny p-value');

no_crashes($node);
$node->stop;
done_testing();
