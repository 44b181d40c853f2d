#!/usr/bin/env python3
"""Random training sets through credit_risk.cr_train on a sanitized server.

run.sh builds credit_risk with ASan and UBSan, starts a private server that
loads that build, and runs this driver against it.  Each case is generated
from (seed, case number) alone, so any case can be replayed by number:

    driver.py --host DIR --port N --log FILE [--cases N] [--seed S] ...
    driver.py --seed S --dump N        print case N as a psql script

A case creates a table of random rows (1 to 2,000 rows, 1 to 30 feature
columns of assorted types, NULL shares from 0 to 100%, constant, duplicated,
huge, tiny and negative columns, any class balance down to a single event or
none), calls cr_train with random arguments and params (in range, at and past
each bound, wrong types), and when a model comes back scores it: cr_predict
in its array, jsonb, row and bytea forms, cr_predict_batch, cr_explain in
its forms, cr_explain_batch, cr_drift_score, cr_evaluate and the model
readers.

Each case passes when every statement either answers or fails with an
SQLSTATE outside class XX (internal error), the backend survives, and the
server log gains no sanitizer report.  Only the Python standard library and
psql are used.
"""

import argparse
import collections
import json
import math
import os
import random
import re
import subprocess
import sys
import time

PSQL = '/usr/lib/postgresql/15/bin/psql'
DB = 'sanitize'
APPNAME = 'cr_sanitize'

# ------------------------------------------------------------------ quoting


def lit(s):
    """SQL string literal (standard_conforming_strings is on)."""
    if s is None:
        return 'NULL'
    return "'" + s.replace("'", "''") + "'"


def ident(s):
    return '"' + s.replace('"', '""') + '"'


def copy_text(v, sqltype):
    """One value in COPY's text format."""
    if v is None:
        return '\\N'
    if sqltype == 'boolean':
        return 't' if v else 'f'
    if sqltype == 'text':
        return (str(v).replace('\\', '\\\\').replace('\t', '\\t')
                .replace('\n', '\\n').replace('\r', '\\r'))
    if isinstance(v, float):
        if math.isnan(v):
            return 'NaN'
        if math.isinf(v):
            return 'Infinity' if v > 0 else '-Infinity'
        if sqltype in ('smallint', 'integer', 'bigint'):
            return str(int(v))
        return repr(v)
    return str(v)


def sql_float(v):
    """A float8 array element in an ARRAY[...]::float8[] literal list."""
    if v is None:
        return 'NULL'
    if math.isnan(v):
        return "'NaN'"
    if math.isinf(v):
        return "'Infinity'" if v > 0 else "'-Infinity'"
    return "'" + repr(v) + "'"


# ------------------------------------------------------------- generation

EXTREMES = [0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308,
            1.7976931348623157e308, -1.7976931348623157e308,
            5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, -1e-300,
            1e300, -1e300, 1e15, 9007199254740993.0, 0.1, 1e-10,
            123456789.123, -2147483648.0, 4294967296.0]

ODD_NAMES = ['F Mixed', 'with space', 'quote"d', "apo'strophe", 'ünïcödé',
             'x' * 63, 'customer_id', '__score__', 'default_probability',
             'select', 'key', 'Y', 'risk_category', 'score', 'NULL']

INT_RANGES = {'smallint': (-32768, 32767), 'integer': (-2147483648, 2147483647),
              'bigint': (-9223372036854775808, 9223372036854775807)}

COMMON_KEYS = ['holdout', 'seed', 'key', 'threshold', 'risk_cutoffs', 'risk_labels',
               'score_points', 'score_odds', 'score_pdo', 'drift_moderate', 'drift_major']
LOGISTIC_KEYS = ['l2', 'max_iter', 'tol']
SCORECARD_KEYS = ['l2', 'max_iter', 'tol', 'max_bins', 'min_bin_share', 'prebins']
GBM_KEYS = ['n_trees', 'max_depth', 'learning_rate', 'lambda', 'gamma', 'min_child_weight',
            'subsample', 'colsample_bytree', 'scale_pos_weight', 'max_bin', 'base_score',
            'early_stopping_rounds', 'monotone', 'threads']

# key: (lo, hi, lo_open, hi_open, integer, typical values)
NUMERIC_PARAMS = {
    'holdout': (0.0, 1.0, False, True, False, [0, 0, 0.1, 0.2, 0.2, 0.3, 0.5, 0.8, 0.95]),
    'seed': (0, 2147483647, False, False, True, [0, 1, 7, 42, 12345, 2147483647]),
    'threshold': (0.0, 1.0, False, False, False, [0.05, 0.2, 0.5, 0.9]),
    'score_points': (-1e6, 1e6, False, False, False, [0, 300, 600, -500, 999999]),
    'score_odds': (0.0, 1e9, True, False, False, [1, 50, 1e-6, 1e6]),
    'score_pdo': (0.0, 1e6, True, False, False, [20, 1, 1e-6, 500]),
    'l2': (0.0, 1e12, False, False, False, [0, 1e-6, 0.1, 1, 100, 1e6]),
    'max_iter': (1, 10000, False, False, True, [1, 2, 5, 25, 100, 200]),
    'tol': (0.0, 1.0, True, False, False, [1e-12, 1e-8, 1e-4, 0.1, 1]),
    'max_bins': (2, 100, False, False, True, [2, 3, 6, 10, 100]),
    'min_bin_share': (0.0, 0.5, True, False, False, [1e-9, 0.01, 0.05, 0.2, 0.5]),
    'prebins': (2, 254, False, False, True, [2, 5, 20, 254]),
    'n_trees': (1, 100000, False, False, True, [1, 2, 3, 5, 8, 12, 20, 20]),
    'max_depth': (1, 12, False, False, True, [1, 2, 3, 4, 6, 8, 12]),
    'learning_rate': (0.0, 1.0, True, False, False, [1e-6, 0.01, 0.1, 0.3, 1]),
    'lambda': (0.0, 1e9, False, False, False, [0, 0, 1e-9, 0.5, 1, 10, 1e9]),
    'gamma': (0.0, 1e12, False, False, False, [0, 0.01, 1, 100, 1e12]),
    'min_child_weight': (0.0, 1e12, False, False, False, [0, 0, 1e-9, 0.5, 1, 10, 1e12]),
    'subsample': (0.0, 1.0, True, False, False, [1e-9, 0.01, 0.3, 0.5, 0.8, 1]),
    'colsample_bytree': (0.0, 1.0, True, False, False, [1e-9, 0.01, 0.3, 0.5, 0.8, 1]),
    'scale_pos_weight': (0.0, 1e9, True, False, False, [1e-9, 0.1, 1, 10, 1e9]),
    'max_bin': (2, 256, False, False, True, [2, 3, 4, 16, 64, 255, 256]),
    'early_stopping_rounds': (0, 100000, False, False, True, [0, 0, 1, 2, 3, 5]),
    'threads': (1, 64, False, False, True, [1, 2, 3]),
}
# upper bounds that would make a case slow: never used as "at the bound"
SLOW_UPPER = {'n_trees', 'threads'}
WRONG_TYPES = ['"0.5"', '"1"', 'true', 'false', 'null', '[1]', '[]', '{"a": 1}', '{}', '""']
RAW_NUMBERS = ['1e400', '-1e400', '1e-400', '-0', '0.1e1', '1.00000000000000000001',
               '99999999999999999999999', '-99999999999999999999999']


class Column:
    def __init__(self, name, sqltype, values, kind):
        self.name = name
        self.sqltype = sqltype
        self.values = values
        self.kind = kind


class Case:
    """One generated case: its table, the training call and the scoring calls."""

    def __init__(self, seed, number, settings):
        self.seed = seed
        self.number = number
        self.r = random.Random('credit_risk-sanitize/%d/%d' % (seed, number))
        self.tags = set()
        self.settings = settings
        self.inject = None
        self.generate()

    # -- data
    def pick_rows(self):
        r = self.r
        x = r.random()
        if x < 0.04:
            return r.randint(1, 4)
        if x < 0.25:
            return r.randint(5, 40)
        if x < 0.65:
            return r.randint(41, 400)
        return r.randint(401, self.settings.max_rows)

    def pick_features(self):
        r = self.r
        x = r.random()
        if x < 0.3:
            return r.randint(1, 3)
        if x < 0.7:
            return r.randint(4, 10)
        return r.randint(11, self.settings.max_features)

    def labels(self, n):
        r = self.r
        x = r.random()
        if x < 0.76:
            rate = r.choice([0.5, 0.3, 0.2, 0.1, 0.05, 0.02, r.uniform(0.01, 0.99)])
            y = [1 if r.random() < rate else 0 for _ in range(n)]
            self.tags.add('balance-rate')
        elif x < 0.84:
            y = [0] * n
            y[r.randrange(n)] = 1
            self.tags.add('balance-one-event')
        elif x < 0.88:
            y = [1] * n
            y[r.randrange(n)] = 0
            self.tags.add('balance-one-nonevent')
        elif x < 0.95:
            y = [0] * n
            self.tags.add('balance-all-0')
        else:
            y = [1] * n
            self.tags.add('balance-all-1')
        return y

    def feature_values(self, kind, n, y, earlier):
        """(sqltype, values) of one feature column, before NULLs."""
        r = self.r
        g = r.gauss
        if kind == 'normal':
            mu = r.choice([0.0, 0.0, r.uniform(-1e3, 1e3), r.uniform(-1e9, 1e9)])
            sd = 10 ** r.uniform(-6, 6)
            return 'float8', [g(mu, sd) for _ in range(n)]
        if kind == 'signal':
            shift = r.choice([0.1, 0.5, 1, 3, 10])
            if r.random() < 0.15:
                self.tags.add('separation')
                return 'float8', [float(v) * shift for v in y]
            return 'float8', [v * shift + g(0, 1) for v in y]
        if kind == 'uniform':
            a = r.uniform(-1e6, 1e6)
            b = a + 10 ** r.uniform(-8, 8)
            return 'float8', [r.uniform(a, b) for _ in range(n)]
        if kind == 'huge':
            s = r.choice([1e300, 1e307, 1.7e308])
            return 'float8', [max(-1.7976931348623157e308,
                                  min(1.7976931348623157e308, g(0, 1) * s)) for _ in range(n)]
        if kind == 'tiny':
            s = r.choice([1e-300, 1e-310, 5e-324, 1e-320])
            return 'float8', [g(0, 1) * s for _ in range(n)]
        if kind == 'negative':
            s = 10 ** r.uniform(-3, 12)
            return 'float8', [-abs(g(0, s)) - r.choice([0, 1, 1e6]) for _ in range(n)]
        if kind == 'extremes':
            return 'float8', [r.choice(EXTREMES) for _ in range(n)]
        if kind == 'discrete':
            k = r.randint(1, 6)
            return r.choice(['integer', 'float8', 'smallint']), [r.randint(0, k) for _ in range(n)]
        if kind == 'binary':
            return 'integer', [r.randint(0, 1) for _ in range(n)]
        if kind == 'ties':
            base = r.choice(EXTREMES[:5] + [r.uniform(-10, 10)])
            other = r.choice(EXTREMES)
            share = r.choice([0.5, 0.9, 0.99, 0.999])
            return 'float8', [base if r.random() < share else other for _ in range(n)]
        if kind == 'constant':
            c = r.choice(EXTREMES + [r.uniform(-100, 100), 42.0])
            return r.choice(['float8', 'float8', 'numeric']), [c] * n
        if kind == 'duplicate' and earlier:
            src = r.choice(earlier)
            return src.sqltype, list(src.values)
        if kind == 'int':
            t = r.choice(['smallint', 'integer', 'bigint'])
            lo, hi = INT_RANGES[t]
            if r.random() < 0.6:
                lo, hi = max(lo, -1000), min(hi, 1000)
            return t, [r.randint(lo, hi) for _ in range(n)]
        if kind == 'bigint_extreme':
            vals = [9223372036854775807, -9223372036854775808, 9007199254740993,
                    -9007199254740993, 0, 1, 2 ** 62]
            return r.choice(['bigint', 'numeric']), [r.choice(vals) for _ in range(n)]
        if kind == 'nan_inf':
            bad = r.choice([float('nan'), float('inf'), float('-inf')])
            vals = [g(0, 1) for _ in range(n)]
            vals[r.randrange(n)] = bad
            self.tags.add('nan-inf')
            return r.choice(['float8', 'numeric', 'real']), vals
        if kind == 'bool':
            return 'boolean', [r.random() < 0.5 for _ in range(n)]
        if kind == 'text':
            return 'text', ['v%d' % r.randint(0, 5) for _ in range(n)]
        return 'float8', [g(0, 1) for _ in range(n)]

    KINDS = [('normal', 20), ('signal', 12), ('uniform', 8), ('huge', 5), ('tiny', 5),
             ('negative', 4), ('extremes', 5), ('discrete', 8), ('binary', 4), ('ties', 4),
             ('constant', 3), ('duplicate', 5), ('int', 8), ('bigint_extreme', 2),
             ('bool', 2), ('text', 1)]

    TAME_KINDS = [('normal', 20), ('signal', 12), ('uniform', 8), ('negative', 4), ('discrete', 8),
                  ('binary', 4), ('ties', 2), ('int', 8)]

    def null_share(self):
        r = self.r
        x = r.random()
        if not self.wild:
            return 0.0 if x < 0.6 else -1.0 if x < 0.7 else r.uniform(0, 0.5)
        if x < 0.55:
            return 0.0
        if x < 0.65:
            return -1.0     # exactly one NULL
        if x < 0.80:
            return r.uniform(0, 0.5)
        if x < 0.96:
            return r.uniform(0.5, 0.99)
        if x < 0.98:
            return 1.0
        return -2.0         # all but one NULL

    def apply_nulls(self, values, share):
        r = self.r
        n = len(values)
        if share == 0.0:
            return values
        if share == -1.0:
            values[r.randrange(n)] = None
            return values
        if share == -2.0:
            keep = r.randrange(n)
            return [v if i == keep else None for i, v in enumerate(values)]
        return [None if r.random() < share else v for v in values]

    def retype(self, sqltype, values):
        """Store some float columns as numeric or real, where the values fit."""
        r = self.r
        if sqltype != 'float8':
            return sqltype
        x = r.random()
        if x < 0.15:
            return 'numeric'
        if x < 0.25:
            finite = [abs(v) for v in values if v is not None and not math.isnan(v) and v != 0]
            if all(1e-37 < v < 3e38 for v in finite if not math.isinf(v)):
                return 'real'
        return sqltype

    def generate(self):
        r = self.r
        n = self.pick_rows()
        nf = self.pick_features()
        self.nrows = n
        self.tags.add('rows-%s' % ('tiny' if n < 5 else 'small' if n <= 40 else
                                   'medium' if n <= 400 else 'large'))

        # label
        y = self.labels(n)
        ltype = r.choices(['integer', 'smallint', 'bigint', 'boolean', 'numeric', 'float8', 'text'],
                          [60, 8, 8, 10, 8, 4, 2])[0]
        lvals = [bool(v) if ltype == 'boolean' else
                 (str(v) if ltype == 'text' else v) for v in y]
        if r.random() < 0.04:
            i = r.randrange(n)
            bad = r.choice([None, 2, -1, 0.5]) if ltype not in ('boolean', 'text') else None
            if ltype in ('integer', 'smallint', 'bigint') and bad == 0.5:
                bad = 2
            lvals[i] = bad
            self.tags.add('bad-label')
        label_name = 'y' if r.random() < 0.9 else r.choice(['Label Y', 'bad', 'default_probability'])
        self.label = Column(label_name, ltype, lvals, 'label')

        # key
        self.key = None
        if r.random() < 0.85:
            kt = r.choices(['integer', 'bigint', 'text'], [60, 20, 20])[0]
            ids = list(range(1, n + 1))
            if r.random() < 0.3:
                r.shuffle(ids)
            if kt == 'bigint':
                ids = [i * 1000003 + 9000000000000000000 // 2 for i in ids]
            if kt == 'text':
                ids = ['c%05d' % i for i in ids]
            if r.random() < 0.05 and n > 1:
                ids[r.randrange(n)] = ids[0]
                self.tags.add('key-duplicate')
            if r.random() < 0.03:
                ids[r.randrange(n)] = None
                self.tags.add('key-null')
            key_name = 'id' if r.random() < 0.9 else r.choice(['customer_id', 'Key Col'])
            self.key = Column(key_name, kt, ids, 'key')

        # features
        # a wild case draws columns of every kind; a tame one only columns a
        # fit can use, so that more cases get as far as training
        self.wild = r.random() < 0.6
        if not self.wild:
            self.tags.add('tame')
        odd = r.random() < 0.1
        used = {self.label.name} | ({self.key.name} if self.key else set())
        feats = []
        kinds, weights = zip(*(self.KINDS if self.wild else self.TAME_KINDS))
        bad_column = r.randrange(nf) if r.random() < 0.04 else -1
        for i in range(nf):
            kind = 'nan_inf' if i == bad_column else r.choices(kinds, weights)[0]
            t, vals = self.feature_values(kind, n, y, feats)
            if kind not in ('constant', 'duplicate', 'bool', 'text'):
                vals = self.apply_nulls(vals, self.null_share())
            elif kind == 'duplicate' and r.random() < 0.3:
                vals = self.apply_nulls(vals, self.null_share())
            t = self.retype(t, vals)
            name = 'f%d' % i
            if odd and r.random() < 0.4:
                cand = r.choice(ODD_NAMES)
                if cand not in used:
                    name = cand
                    self.tags.add('odd-names')
            used.add(name)
            self.tags.add('kind-' + kind)
            if t not in ('boolean', 'text'):
                finite = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
                if math.isinf(sum(abs(v) for v in finite)):
                    # the sum of some of its values may leave the double range
                    self.tags.add('overflowing-mean')
            feats.append(Column(name, t, vals, kind))
        self.features = feats

        cols = feats + [self.label] + ([self.key] if self.key else [])
        r.shuffle(cols)
        self.columns = cols
        self.table = 'z%d' % self.number if r.random() < 0.95 else 'Z Tab %d' % self.number
        self.qtable = ident(self.table)

        # Most cases call cr_train correctly, so that the data decide what
        # happens; the others carry exactly one bad argument or parameter.
        self.fault = None
        if r.random() < 0.3:
            self.fault = r.choices(
                ['name', 'algorithm', 'source', 'features', 'param-past-bound', 'param-type',
                 'param-raw-number', 'param-other-algorithm', 'param-unknown', 'params-not-object',
                 'bands', 'drift', 'key', 'monotone'],
                [3, 3, 6, 8, 16, 8, 6, 4, 2, 2, 8, 4, 6, 6])[0]
            self.tags.add('fault-' + self.fault)
        self.algorithm = r.choices(['gbm', 'logistic', 'scorecard'], [45, 35, 20])[0]
        self.tags.add(self.algorithm)
        if self.fault == 'algorithm':
            self.algorithm = r.choice(['GBM', 'xgboost', '', ' gbm', None])
        self.name = 'z%d' % self.number
        if self.fault == 'name':
            self.name = r.choice(['n' * 70, 'Name With Space', '', None, 'a.b', 'ünï'])
        self.source = self.pick_source()
        self.feature_arg = self.pick_feature_arg()
        self.params = self.pick_params(self.algorithm, self.fault)
        self.session = self.pick_session()
        self.retrain = None
        if r.random() < 0.1:
            # a second version, then served to everyone or to a share of keys
            algo2 = r.choice(['gbm', 'logistic', 'scorecard'])
            self.retrain = (algo2, self.pick_params(algo2, None))
            share = r.choice([None, 0.0, 0.5, 1.0, 0.999])
            self.serve2 = ('SELECT version FROM credit_risk.cr_promote(%s, 2)' % lit(self.name)
                           if share is None else
                           'SELECT challenger_version FROM credit_risk.cr_route(%s, 2, %r)' % (lit(self.name), share))
            self.tags.add('retrain')
        # drawn now, so that the case's SQL is the same however often it is written
        self.step_list = self.steps()

    def pick_source(self):
        r = self.r
        q = self.qtable
        if self.fault == 'source':
            return r.choice([
                'VALUES (1, 2)',
                'z_does_not_exist',
                'SELECT * FROM %s; SELECT 1' % q,
                'SELECT 1/0',
                '',
                'SELECT * FROM %s WHERE false' % q,
                'DELETE FROM %s' % q,
                'SELECT %s FROM %s' % (ident(self.label.name), q),
            ])
        choices = [
            (self.table if r.random() < 0.5 else q, 50),
            ('public.' + q, 5),
            ('SELECT * FROM %s' % q, 15),
            ('SELECT * FROM %s ORDER BY %s' % (q, ident(self.columns[0].name)), 5),
            ('WITH s AS (SELECT * FROM %s) SELECT * FROM s' % q, 4),
            ('TABLE %s' % q, 4),
            ('  select * from %s limit 1' % q, 2),
            ('SELECT *, row_number() OVER () AS extra FROM %s' % q, 2),
        ]
        vals, weights = zip(*choices)
        return r.choices(vals, weights)[0]

    def pick_feature_arg(self):
        r = self.r
        numeric = [c.name for c in self.features if c.sqltype != 'text']
        if self.fault == 'features':
            names = [c.name for c in self.features]
            chosen = r.sample(names, r.randint(1, len(names)))
            bad = r.choice(['label', 'key', 'missing', 'empty', 'null', 'text', 'duplicate'])
            if bad == 'label':
                chosen.append(self.label.name)
            elif bad == 'key' and self.key:
                chosen.append(self.key.name)
            elif bad == 'missing':
                chosen.append('no_such_column')
            elif bad == 'empty':
                chosen = []
            elif bad == 'null':
                chosen.append(None)
            elif bad == 'duplicate':
                chosen.append(chosen[0])
            else:
                chosen.append(r.choice(names))
            return chosen
        if r.random() < 0.55 or not numeric:
            return None
        self.tags.add('features-listed')
        return r.sample(numeric, r.randint(1, len(numeric)))

    def numeric_value(self, key, fault=None):
        """A JSON value for a numeric parameter: typical or at a bound, or
        (with a fault) past a bound, a raw number PostgreSQL cannot take as a
        double, or a wrong type."""
        r = self.r
        lo, hi, lo_open, hi_open, integer, typical = NUMERIC_PARAMS[key]
        if fault is None:
            if r.random() < 0.8:
                return json.dumps(r.choice(typical))
            # at a bound: the bound itself when closed, the nearest value inside when open
            if key in SLOW_UPPER or r.random() < 0.5:
                v = lo if not lo_open else (lo + 1 if integer else math.nextafter(lo, math.inf))
            else:
                v = hi if not hi_open else (hi - 1 if integer else math.nextafter(hi, -math.inf))
            self.tags.add('param-at-bound')
            return json.dumps(v)
        if fault == 'param-past-bound':
            c = r.random()
            if c < 0.4:
                v = lo if lo_open else (lo - 1 if integer else math.nextafter(lo, -math.inf))
            elif c < 0.8:
                v = hi if hi_open else (hi + 1 if integer else math.nextafter(hi, math.inf))
            elif integer:
                v = lo + 0.5
            else:
                v = r.choice([-1e300, 1e300, -1.0])
            return json.dumps(v)
        if fault == 'param-raw-number':
            return r.choice(RAW_NUMBERS)
        return r.choice(WRONG_TYPES)

    def bands(self, fault):
        r = self.r
        k = r.randint(1, 15)
        cuts = sorted(set(round(r.uniform(0.001, 0.999), 4) for _ in range(k)))
        labels = ['band %d' % i for i in range(len(cuts) + 1)]
        if r.random() < 0.1:
            labels = ['x' * 63] + ['ü' * 31] + labels[2:] if len(labels) > 2 else labels
        if not fault:
            return json.dumps(cuts), json.dumps(labels)
        return r.choice([
            (json.dumps(cuts), json.dumps(labels[:-1])),               # one label short
            (json.dumps([0.6, 0.3]), json.dumps(['a', 'b', 'c'])),     # decreasing
            (json.dumps([0.3, 0.3]), json.dumps(['a', 'b', 'c'])),     # not strictly increasing
            (json.dumps([0, 0.5]), json.dumps(['a', 'b', 'c'])),       # at the open bounds
            (json.dumps([0.5, 1]), json.dumps(['a', 'b', 'c'])),
            (json.dumps([i / 17 for i in range(1, 17)]),
             json.dumps(['l%d' % i for i in range(17)])),              # 16 cut-offs: one too many
            (json.dumps([0.5]), json.dumps(['', 'b'])),
            (json.dumps([0.5]), json.dumps(['x' * 63, 'y' * 64])),
            (json.dumps([0.5]), json.dumps([1, 2])),
            (json.dumps([0.5]), None),
            (None, json.dumps(['a'])),
            ('[]', '["only"]'),
            ('0.5', '["a", "b"]'),
            ('[[0.5]]', '["a", "b"]'),
            ('[null]', '["a", "b"]'),
            ('["0.5"]', '["a", "b"]'),
            ('[1e-400]', '["a", "b"]'),
            ('{}', '{}'),
        ])

    def monotone(self, fault):
        r = self.r
        names = [c.name for c in self.features]
        obj = {}
        for nm in r.sample(names, r.randint(0, min(len(names), 4))):
            obj[nm] = r.choice([1, -1, 1, -1, 0])
        if fault:
            y = r.random()
            if y < 0.2:
                return r.choice(['[1]', '"x"', '1', 'null', 'true'])
            if y < 0.45:
                obj['no_such_feature'] = 1
            elif y < 0.6:
                obj[self.label.name] = 1
            else:
                obj[r.choice(names)] = r.choice([2, -2, 0.5, '1', None, [1], 3])
        return '{' + ', '.join('%s: %s' % (json.dumps(k), json.dumps(v)) for k, v in obj.items()) + '}'

    def key_param(self, fault):
        r = self.r
        if not fault:
            return json.dumps(self.key.name) if self.key and r.random() < 0.9 else 'null'
        return r.choice(['"no_such_key"', json.dumps(self.label.name),
                         json.dumps(self.features[0].name), '""', '5', '["id"]'])

    def pick_params(self, algorithm, fault):
        r = self.r
        if fault == 'params-not-object':
            return r.choice(['[]', '"x"', '1', 'null', '[{"n_trees": 1}]'])
        own = {'logistic': LOGISTIC_KEYS, 'scorecard': SCORECARD_KEYS}.get(algorithm, GBM_KEYS)
        other = GBM_KEYS if algorithm in ('logistic', 'scorecard') else LOGISTIC_KEYS
        pool = COMMON_KEYS + own
        keys = r.sample(pool, r.randint(0, min(len(pool), 9)))
        if algorithm == 'gbm' and 'n_trees' not in keys and r.random() < 0.95:
            keys.append('n_trees')
        numeric_keys = [k for k in keys if k in NUMERIC_PARAMS]
        bad_key = None
        if fault in ('param-past-bound', 'param-type', 'param-raw-number'):
            if not numeric_keys:
                keys.append(r.choice([k for k in pool if k in NUMERIC_PARAMS]))
                numeric_keys = keys[-1:]
            bad_key = r.choice(numeric_keys)
        elif fault in ('bands', 'drift', 'key', 'monotone'):
            want = {'bands': 'risk_cutoffs', 'drift': 'drift_major', 'key': 'key',
                    'monotone': 'monotone'}[fault]
            if want == 'monotone' and algorithm != 'gbm':
                keys.append(want)     # a gbm key in a logistic call: also a fault
            elif want not in keys:
                keys.append(want)
        forced = {}
        if algorithm == 'gbm' and r.random() < 0.15:
            # leaves with no hessian and no L2, deep trees over few bins
            forced = {'lambda': '0', 'min_child_weight': '0',
                      'gamma': r.choice(['0', '0', '1e-300']),
                      'max_depth': str(r.randint(6, 12)), 'max_bin': str(r.randint(2, 4)),
                      'subsample': r.choice(['1', '0.5', '0.05', '1e-9']),
                      'scale_pos_weight': r.choice(['1', '1e-9', '1e9']),
                      'base_score': r.choice(['null', '1e-9', '0.999999999'])}
            for k in r.sample(sorted(forced), r.randint(3, len(forced))):
                if k not in keys and k != bad_key:
                    keys.append(k)
            self.tags.add('gbm-edge')
        entries = []
        for k in keys:
            if k in forced and k != bad_key:
                entries.append((k, forced[k]))
                self.tags.add('param-' + k)
            elif k in NUMERIC_PARAMS:
                v = self.numeric_value(k, fault if k == bad_key else None)
                if k == 'n_trees':
                    # keep training quick: a valid count above max_trees is cut down
                    try:
                        f = float(v)
                    except ValueError:
                        f = None
                    if f is not None and self.settings.max_trees < f <= 100000 and f == int(f):
                        v = str(r.randint(1, self.settings.max_trees))
                entries.append((k, v))
                self.tags.add('param-' + k)
            elif k == 'key':
                entries.append((k, self.key_param(fault == 'key')))
            elif k in ('risk_cutoffs', 'risk_labels'):
                if any(e[0] in ('risk_cutoffs', 'risk_labels') for e in entries):
                    continue
                cuts, labels = self.bands(fault == 'bands')
                if cuts is not None:
                    entries.append(('risk_cutoffs', cuts))
                if labels is not None:
                    entries.append(('risk_labels', labels))
                self.tags.add('param-bands')
            elif k in ('drift_moderate', 'drift_major'):
                if any(e[0] in ('drift_moderate', 'drift_major') for e in entries):
                    continue
                if fault == 'drift':
                    a, b = r.choice([(0.25, 0.25), (0.3, 0.2), (0.1, 1e-9), (0.1, 100.5), (0, 0.2),
                                     (-1, 0.5), ('"x"', 0.5), (0.5, None), (None, 0.05)])
                else:
                    a, b = r.choice([(0.1, 0.25), (1e-9, 100), (0.05, 0.0500001), (None, 0.3),
                                     (0.01, None), (99.9, 100)])
                if a is not None:
                    entries.append(('drift_moderate', a if isinstance(a, str) else json.dumps(a)))
                if b is not None:
                    entries.append(('drift_major', json.dumps(b)))
                self.tags.add('param-drift')
            elif k == 'monotone':
                entries.append((k, self.monotone(fault == 'monotone')))
                self.tags.add('param-monotone')
            elif k == 'base_score':
                entries.append((k, r.choice(['null', '0.5', '0.01', '0.99', '1e-9', '0.999999999'])))
                self.tags.add('param-base_score')
        if algorithm in ('logistic', 'gbm') and r.random() < 0.3:
            # fitted from cr_train_partial sums, or trees from cr_gbm_shard's
            # histograms (binned in this backend); it needs the key
            entries.append(('distributed', r.choice(['true', 'true', 'true', 'false', '1'])))
            if self.key and not any(e[0] == 'key' for e in entries) and r.random() < 0.9:
                entries.append(('key', json.dumps(self.key.name)))
            self.tags.add('param-distributed')
        if r.random() < 0.15:
            entries.append(('calibration', r.choice(['"platt"', '"isotonic"', '"none"', '"beta"'])))
            self.tags.add('param-calibration')
        if r.random() < 0.1:
            entries.append(('verbose', r.choice(['true', 'false', '1', '"yes"'])))
            self.tags.add('param-verbose')
        if fault == 'param-other-algorithm':
            entries.append((r.choice(other), '1'))
        elif fault == 'param-unknown':
            entries.append((r.choice(['n_tree', 'Holdout', 'unknown', '']), '1'))
        if r.random() < 0.02 and entries:
            entries.append(entries[0])      # a duplicated key: jsonb keeps the last
        return '{' + ', '.join('%s: %s' % (json.dumps(k), v) for k, v in entries) + '}'

    def pick_session(self):
        r = self.r
        lines = []
        if r.random() < 0.1:
            lines.append('SET credit_risk.threads = %d;' % r.randint(1, 3))
        if r.random() < 0.05:
            lines.append('SET credit_risk.simd = off;')
        if r.random() < 0.03:
            lines.append("SET credit_risk.train_memory = '%s';" % r.choice(['64kB', '1MB', '8MB']))
            self.tags.add('train-memory')
        if r.random() < 0.1:
            lines.append("SET work_mem = '64kB';")
        return lines

    # -- SQL
    def copy_block(self):
        cols = self.columns
        out = ['COPY %s (%s) FROM STDIN;' % (self.qtable, ', '.join(ident(c.name) for c in cols))]
        for i in range(self.nrows):
            out.append('\t'.join(copy_text(c.values[i], c.sqltype) for c in cols))
        out.append('\\.')
        return out

    def float_array(self):
        """An array expression as long as the serving model's features (m.features)."""
        r = self.r
        palette = []
        for _ in range(r.randint(4, 16)):
            x = r.random()
            if x < 0.55:
                palette.append(r.gauss(0, 10 ** r.uniform(-2, 6)))
            elif x < 0.75:
                palette.append(r.choice(EXTREMES))
            elif x < 0.9:
                palette.append(None)
            elif x < 0.97:
                palette.append(float('nan'))
            else:
                palette.append(r.choice([float('inf'), float('-inf')]))
        delta = r.choices([0, -1, 1, 5], [85, 5, 5, 5])[0]
        plit = 'ARRAY[%s]::float8[]' % ', '.join(sql_float(v) for v in palette)
        return ('ARRAY(SELECT (%s)[1 + (g - 1) %% %d] FROM generate_series(1, cardinality(m.features) + %d) g)'
                % (plit, len(palette), delta))

    def other_source(self):
        r = self.r
        q = self.qtable
        first = ident(self.features[0].name)
        return r.choices([
            self.source,
            'SELECT * FROM %s' % q,
            'SELECT * FROM %s ORDER BY %s NULLS FIRST LIMIT %d' % (q, first, r.randint(1, 50)),
            'SELECT * FROM %s WHERE false' % q,
            'SELECT %s FROM %s' % (ident(self.label.name), q),
            'SELECT *, 1 AS extra FROM %s' % q,
        ], [40, 20, 20, 5, 5, 10])[0]

    def train_call(self, algorithm, params):
        if self.feature_arg is None:
            farg = 'NULL'
        else:
            farg = 'ARRAY[%s]::text[]' % ', '.join(lit(f) for f in self.feature_arg) \
                if self.feature_arg else "'{}'::text[]"
        parg = 'NULL' if params is None else lit(params) + '::jsonb'
        return ('SELECT 1 AS trained FROM credit_risk.cr_train(%s, %s, %s, %s, %s, %s)'
                % (lit(self.name), lit(self.source), lit(self.label.name),
                   lit(algorithm) if algorithm is not None else 'NULL', farg, parg))

    def steps(self):
        """The scoring statements run after a successful training: (step, sql)."""
        r = self.r
        nm = lit(self.name)
        q = self.qtable
        sv = 'credit_risk.cr_serving_version(%s) m' % nm
        out = []
        for i in range(2):
            out.append(('predict_array', 'SELECT credit_risk.cr_predict(%s, %s) FROM %s'
                        % (nm, self.float_array(), sv)))
        if r.random() < 0.1:
            out.append(('predict_array', "SELECT credit_risk.cr_predict(%s, %s)" % (
                nm, r.choice(["'{}'::float8[]", "'{{1,2},{3,4}}'::float8[]", "'[0:1]={1,2}'::float8[]"]))))
        pert = r.choices(['', "- %s" % lit(self.features[0].name),
                          "|| jsonb_build_object(%s, 'abc')" % lit(self.features[0].name),
                          "|| jsonb_build_object(%s, 1e400::numeric)" % lit(self.features[-1].name),
                          "|| '{\"customer_id\": {\"a\": [1, 2]}}'",
                          "|| jsonb_build_object(%s, NULL::float8)" % lit(self.features[0].name)],
                         [60, 8, 8, 8, 8, 8])[0]
        out.append(('predict_jsonb',
                    "SELECT count(*), sum((credit_risk.cr_predict(%s, to_jsonb(t) %s)->>'default_probability')::float8) "
                    'FROM (SELECT * FROM %s LIMIT %d) t' % (nm, pert, q, r.randint(1, 5))))
        if r.random() < 0.2:
            out.append(('predict_jsonb', "SELECT credit_risk.cr_predict(%s, %s::jsonb)" % (
                nm, lit(r.choice(['{}', '[1, 2]', '"x"', 'null', '{"customer_id": 5}'])))))
        # the table's row type, or an anonymous record
        rows = q if r.random() < 0.7 else '(SELECT * FROM %s LIMIT 7)' % q
        out.append(('predict_row', 'SELECT count(*), sum(credit_risk.cr_predict(%s, t)) FROM %s t'
                    % (nm, rows)))
        out.append(('predict_bytes', 'SELECT credit_risk.cr_predict(m.model, %s) FROM %s'
                    % (self.float_array(), sv)))
        out.append(('predict_bytes_row', 'SELECT count(*), sum(credit_risk.cr_predict(m.model, t)) FROM %s, %s t'
                    % (sv, q)))
        key = 'NULL'
        if self.key and r.random() < 0.6:
            key = lit(self.key.name)
        elif r.random() < 0.1:
            key = lit(r.choice(['no_such_key', self.label.name]))
        out.append(('predict_batch',
                    'SELECT count(*), sum(default_probability), count(DISTINCT risk_category), min(score), max(score) '
                    'FROM credit_risk.cr_predict_batch(%s, %s, %s)' % (nm, lit(self.other_source()), key)))
        out.append(('drift_score',
                    'SELECT count(*), sum(psi), sum(ks), count(DISTINCT severity) '
                    'FROM credit_risk.cr_drift_score(%s, %s)' % (nm, lit(self.other_source()))))
        if r.random() < 0.5:
            out.append(('evaluate', 'SELECT credit_risk.cr_evaluate(%s, %s, %s)'
                        % (nm, lit(self.other_source()), lit(self.label.name))))
        # explanations: every form, top_n from none to all, the jsonb answer's reasons
        top = r.choice(['NULL', '0', '1', '4', str(r.randint(5, 40))])
        out.append(('explain_array', 'SELECT count(*), sum(e.contribution) FROM %s, '
                    'credit_risk.cr_explain(%s, %s, %s) e' % (sv, nm, self.float_array(), top)))
        out.append(('explain_row', 'SELECT count(*), sum(e.contribution) FROM (SELECT * FROM %s LIMIT %d) t, '
                    'credit_risk.cr_explain(%s, t, %s) e' % (q, r.randint(1, 5), nm, top)))
        out.append(('explain_bytes', 'SELECT count(*), sum(e.contribution) FROM %s, '
                    'credit_risk.cr_explain(m.model, %s, %s) e' % (sv, self.float_array(), top)))
        out.append(('explain_jsonb', "SELECT count(*), sum(jsonb_array_length(credit_risk.cr_predict(%s, "
                    "to_jsonb(t) || '{\"reasons\": true}')->'reasons')) FROM (SELECT * FROM %s LIMIT 3) t"
                    % (nm, q)))
        if r.random() < 0.5:
            out.append(('explain_batch', 'SELECT count(*), sum(contribution) '
                        'FROM credit_risk.cr_explain_batch(%s, %s, %s, %s)'
                        % (nm, lit(self.other_source()), key, top)))
        out.append(('model_info', 'SELECT credit_risk.cr_model_info(m.model) FROM %s' % sv))
        # validation: WoE bins of a column, information values, calibration, fairness
        col = r.choice(self.columns).name
        woe = r.choice(['{}', '{"max_bins": 2}', '{"trend": "peak", "min_bin_share": 0.01}',
                        '{"trend": "valley", "prebins": 254}', '{"trend": "descending"}',
                        '{"categorical": true}', '{"max_bins": 100, "min_bin_share": 1e-9}'])
        out.append(('woe_bins', 'SELECT count(*), sum(iv) FROM credit_risk.cr_woe_bins(%s, %s, %s, %s)'
                    % (lit(self.other_source()), lit(self.label.name), lit(col), lit(woe))))
        if r.random() < 0.3:
            out.append(('information_value', 'SELECT count(*), sum(iv) FROM credit_risk.cr_information_value(%s, %s)'
                        % (lit(self.other_source()), lit(self.label.name))))
        out.append(('calibration', 'SELECT count(*), sum(p_value) FROM credit_risk.cr_calibration(%s, %s, %s, NULL, %d)'
                    % (nm, lit(self.other_source()), lit(self.label.name), r.choice([3, 10, 50]))))
        fair = r.choice(['{}', '{"approve_below": 0.3}', '{"min_ratio": 1}',
                         '{"label": %s}' % json.dumps(self.label.name)])
        out.append(('fairness', 'SELECT count(*), sum(adverse_impact_ratio), sum(smd) '
                    'FROM credit_risk.cr_fairness(%s, %s, %s, %s)'
                    % (nm, lit(self.other_source()), lit(col), lit(fair))))
        if r.random() < 0.3:
            out.append(('model_report', 'SELECT length(credit_risk.cr_model_report(%s, NULL, %s))'
                        % (nm, r.choice(['NULL', lit(self.other_source())]))))
        if self.algorithm in ('logistic', 'scorecard'):
            out.append(('coefficients', 'SELECT count(*) FROM credit_risk.cr_coefficients(%s)' % nm))
        if self.algorithm == 'scorecard':
            out.append(('scorecard', 'SELECT count(*), sum(points) FROM credit_risk.cr_scorecard(%s)' % nm))
        if self.algorithm == 'gbm':
            out.append(('model_trees', 'SELECT count(*), sum(value) FROM %s, credit_risk.cr_model_trees(m.model) t'
                        % sv))
        out.append(('drift_baseline', 'SELECT count(*) FROM credit_risk.cr_drift_baseline(%s)' % nm))
        # operations: the shared-memory views after the calls above, hostile
        # histogram bounds, and progress reports out of order
        out.append(('serving_stats', 'SELECT count(*), sum(calls), sum(errors), max(p99), max(max) '
                    'FROM credit_risk.serving_stats'))
        bounds = r.choice(["'{}'", "'{0.000001,1}'", "'{NaN}'", "'{1,0.5}'", "'{-Infinity,Infinity}'",
                           "ARRAY[NULL]::float8[]", "'{{1,2},{3,4}}'", "'{0,0}'", "'{1e308,Infinity}'",
                           "ARRAY(SELECT g * 1e-7 FROM generate_series(1, %d) g)" % r.choice([1, 500, 20000])])
        out.append(('serving_histogram', 'SELECT count(*), sum(count), max(sum) '
                    'FROM credit_risk.cr_serving_histogram(%s::float8[])' % bounds))
        report = r.choice(["'cr_x', 'm', NULL", "NULL, NULL, 'a phase'", "NULL, NULL, NULL",
                           "repeat('c', 5000), repeat('m', 5000), NULL", "'cr_x', NULL, repeat('p', 5000)"])
        out.append(('progress_report', 'SELECT credit_risk.cr_progress_report(%s)' % report))
        out.append(('progress', 'SELECT count(*), max(length(phase)) FROM credit_risk.progress'))
        if r.random() < 0.05:
            out.append(('serving_reset', 'SELECT credit_risk.cr_reset_serving_stats()'))
        return out

    def sql(self, markers=True):
        """The case as psql input.  With markers, every statement is followed
        by a line the driver reads: @@R case step SQLSTATE 'message' @@."""
        n = self.number
        out = []

        def mark(step):
            if markers:
                out.append("\\echo @@R %d %s :SQLSTATE :'LAST_ERROR_MESSAGE' @@" % (n, step))

        if markers:
            out.append('\\echo @@BEGIN %d' % n)
        out.append('RESET ALL;')
        out.extend(self.session)
        out.append('DROP TABLE IF EXISTS %s;' % self.qtable)
        out.append('CREATE TABLE %s (%s);' % (
            self.qtable, ', '.join('%s %s' % (ident(c.name), c.sqltype) for c in self.columns)))
        out.extend(self.copy_block())
        mark('load')
        out.append('\\set trained 0')
        out.append(self.train_call(self.algorithm, self.params) + ' \\gset')
        mark('train')
        if self.retrain:
            out.append('\\if :trained')
            out.append(self.train_call(*self.retrain) + ';')
            mark('retrain')
            out.append(self.serve2 + ';')
            mark('serve_version_2')
            out.append('\\endif')
        out.append('\\if :trained')
        for step, stmt in self.step_list:
            out.append(stmt + ';')
            mark(step)
        out.append('\\endif')
        if self.inject:
            # a deliberate bug (--inject), to check that the driver finds it
            out.append("SELECT %s;" % ('pg_sleep(3600)' if self.inject == 'sleep'
                                       else 'cr_sanitize_canary(%s)' % lit(self.inject)))
            mark('injected')
        out.append('DROP TABLE IF EXISTS %s;' % self.qtable)
        if markers:
            out.append('\\echo @@END %d' % n)
        return '\n'.join(out) + '\n'


# ------------------------------------------------------------------ running

SANITIZER_RE = re.compile(r'(ERROR: AddressSanitizer|AddressSanitizer:DEADLYSIGNAL|'
                          r'runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer|'
                          r'==\d+==ERROR:)')
# A backend that dies, or any child killed by a signal, makes the postmaster
# reset every session.  (A parallel worker that raises an ERROR exits with
# code 1 and is logged too, but is no crash.)
CRASH_RE = re.compile(r'(was terminated by signal \d+|server process \(PID \d+\) exited with exit code [1-9]\d*|'
                      r'terminating any other active server processes|\bPANIC:)')
RESULT_RE = re.compile(r"^@@R (\d+) (\S+) (\S*) '((?:[^']|'')*)' @@$", re.M | re.S)
BEGIN_RE = re.compile(r'^@@BEGIN (\d+)$', re.M)
END_RE = re.compile(r'^@@END (\d+)$', re.M)


class Server:
    def __init__(self, args):
        self.args = args
        for k in [k for k in os.environ if k.startswith('PG')]:
            del os.environ[k]
        # startup options: RESET ALL at the start of each case comes back to them
        self.env = dict(os.environ, PGHOST=args.host, PGPORT=str(args.port), PGUSER=args.user,
                        PGAPPNAME=APPNAME, PGCONNECT_TIMEOUT='10',
                        PGOPTIONS='-c statement_timeout=%ds -c client_min_messages=warning'
                        % args.statement_timeout)
        for k in ('LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS'):
            self.env.pop(k, None)
        self.log_pos = os.path.getsize(args.log) if args.log else 0

    def psql(self, script, db=DB, timeout=None):
        return subprocess.run([PSQL, '-X', '-q', '-d', db], input=script, env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              errors='replace')

    def psql_session(self, script, timeout):
        """Run a script; on timeout end the server session first, so that psql
        exits by itself with its output, and kill it only if it does not."""
        p = subprocess.Popen([PSQL, '-X', '-q', '-d', DB], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                             text=True, errors='replace')
        try:
            stdout, stderr = p.communicate(script, timeout=timeout)
            return stdout, stderr, p.returncode, None
        except subprocess.TimeoutExpired:
            activity = self.kill_sessions()
            try:
                stdout, stderr = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                stdout, stderr = p.communicate()
            return stdout, stderr, p.returncode, activity

    def wait_ready(self, limit=120):
        t0 = time.time()
        while time.time() - t0 < limit:
            try:
                p = self.psql('SELECT 1;', db='postgres', timeout=15)
                if p.returncode == 0:
                    return True
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.3)
        return False

    def new_log(self):
        """Server log written since the last call."""
        if not self.args.log:
            return ''
        with open(self.args.log, 'rb') as f:
            f.seek(self.log_pos)
            data = f.read()
        self.log_pos += len(data)
        return data.decode('utf-8', 'replace')

    def kill_sessions(self):
        p = self.psql("SELECT pid, query FROM pg_stat_activity WHERE application_name = '%s' "
                      "AND pid <> pg_backend_pid();\n"
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s' "
                      "AND pid <> pg_backend_pid();" % (APPNAME, APPNAME), db='postgres', timeout=30)
        return p.stdout


def sanitizer_blocks(log):
    """The sanitizer reports in a piece of server log, each with its stack."""
    lines = log.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if SANITIZER_RE.search(lines[i]):
            j = i + 1
            while j < len(lines) and not re.match(r'^\d{4}-\d\d-\d\d ', lines[j]):
                j += 1
            # the report and its stacks, without the shadow memory dump
            block = []
            for line in lines[i:j]:
                if line.startswith('Shadow bytes around'):
                    break
                block.append(line)
            blocks.append('\n'.join(block[:70]))
            i = j
        else:
            i += 1
    return blocks


class Outcome:
    def __init__(self):
        self.cases = 0
        self.skipped = 0
        self.trained = 0
        self.train_errors = collections.Counter()
        self.step_ok = 0
        self.step_errors = collections.Counter()
        self.failures = []      # (case, kind, step, detail)
        self.timeouts = 0
        self.load_errors = collections.Counter()
        self.verbose = False
        self.trained_by = collections.Counter()


def run_batch(server, cases, args, out):
    """Run cases in one psql session; return the cases that did not get to
    run (after a crash) so the caller can queue them again."""
    header = '\\set ON_ERROR_STOP off\n\\set VERBOSITY default\n\\o /dev/null\n'
    script = header + ''.join(c.sql() for c in cases)
    between(server, out)
    stdout, stderr, rc, activity = server.psql_session(script, args.batch_timeout)
    timed_out = activity is not None
    if timed_out:
        stderr += '\n[driver] batch timed out after %ds; sessions: %s' % (args.batch_timeout, activity)

    results = collections.defaultdict(list)
    for m in RESULT_RE.finditer(stdout):
        results[int(m.group(1))].append((m.group(2), m.group(3), m.group(4).replace("''", "'")))
    begun = [int(x) for x in BEGIN_RE.findall(stdout)]
    ended = set(int(x) for x in END_RE.findall(stdout))
    log = server.new_log()
    blocks = sanitizer_blocks(log)
    crashes = [m.group(0) for m in CRASH_RE.finditer(log)]
    lost = rc == 2 or 'connection to server was lost' in stderr or \
        'server closed the connection unexpectedly' in stderr

    by_number = {c.number: c for c in cases}
    unfinished = [n for n in begun if n not in ended]
    culprit = unfinished[-1] if unfinished else (begun[-1] if begun else cases[0].number)
    if timed_out and not begun:
        # psql had to be killed and its output is lost: name the case from the session's query
        m = re.search(r"cr_\w+\('z(\d+)'", stderr)
        if m and int(m.group(1)) in by_number:
            culprit = int(m.group(1))

    for c in cases:
        n = c.number
        if n not in begun and not (timed_out and n == culprit):
            continue
        if n == culprit and (blocks or crashes or lost or timed_out):
            continue
        if n not in ended:
            continue
        out.cases += 1
        record(out, c, results.get(n, []))

    rest = []
    if blocks or crashes or lost or timed_out:
        c = by_number[culprit]
        out.cases += 1
        record(out, c, results.get(culprit, []))
        steps = [s for s, _, _ in results.get(culprit, [])]
        kind = []
        if blocks:
            kind.append('sanitizer report')
        if crashes or (lost and not timed_out):
            kind.append('crash')
        if timed_out:
            kind.append('hang')
        detail = '\n'.join(blocks) if blocks else ''
        if crashes:
            detail += '\n' + '\n'.join(crashes)
        tail = '\n'.join(stderr.strip().splitlines()[-4:])
        detail += '\npsql: ' + tail
        out.failures.append((culprit, ' + '.join(kind), 'in the statement after ' + (steps[-1] if steps else 'the table load'),
                             detail.strip(), c))
        if not server.wait_ready():
            raise SystemExit('driver: the server did not come back after case %d' % culprit)
        time.sleep(0.5)
        # the rest of the report and the postmaster's account of the crash
        more = server.new_log()
        extra = sanitizer_blocks(more) + [m.group(0) for m in CRASH_RE.finditer(more)]
        if extra:
            f = out.failures[-1]
            out.failures[-1] = f[:3] + (f[3] + '\n' + '\n'.join(extra),) + f[4:]
        rest = [x for x in cases if x.number != culprit and x.number not in ended]
    return rest


def between(server, out):
    """A report or a crash in the log outside any case (autovacuum, say)."""
    log = server.new_log()
    blocks = sanitizer_blocks(log)
    crashes = [m.group(0) for m in CRASH_RE.finditer(log)]
    if blocks or crashes:
        out.failures.append((0, 'sanitizer report or crash outside any case', '-',
                             '\n'.join(blocks + crashes), None))


def record(out, case, results):
    if out.verbose:
        for step, state, msg in results:
            if step in ('load', 'train', 'retrain') or state != '00000':
                print('   case %d %s %s %s' % (case.number, step, state,
                                          msg.replace('\n', ' ')[:200] if state != '00000' else ''))
    internal = []
    for step, state, msg in results:
        if step == 'load':
            if state != '00000':
                out.load_errors[state] += 1
            continue
        if state.startswith('XX'):
            internal.append('%s: %s: %s' % (step, state, msg))
        if step == 'train':
            if state == '00000':
                out.trained += 1
                out.trained_by[case.algorithm] += 1
            else:
                out.train_errors[state] += 1
            if state == '57014':
                out.timeouts += 1
        else:
            if state == '00000':
                out.step_ok += 1
            else:
                out.step_errors[state] += 1
    if internal:
        out.failures.append((case.number, 'internal error', ', '.join(sorted(set(i.split(':')[0] for i in internal))),
                             '\n'.join(internal), case))


def canary(server, args):
    """Deliberate bugs: each must be reported, and a plain ERROR must not."""
    lib = args.canary
    setup = ("CREATE OR REPLACE FUNCTION cr_sanitize_canary(text) RETURNS int LANGUAGE c STRICT AS %s;\n"
             % lit(lib))
    p = server.psql(setup, db='postgres')
    if p.returncode != 0:
        raise SystemExit('driver: cannot create the canary function: ' + p.stderr)
    ok = True
    between(server, Outcome())
    for kind, expect in [('error', None), ('heap-overflow', 'heap-buffer-overflow'),
                         ('use-after-free', 'heap-use-after-free'),
                         ('shift', 'runtime error: shift exponent'),
                         ('float-cast', 'runtime error: 1e+300 is outside the range'),
                         ('segv', 'SEGV on unknown address')]:
        server.new_log()
        p = server.psql("SELECT cr_sanitize_canary('%s');" % kind, db='postgres', timeout=60)
        time.sleep(0.2)
        server.wait_ready()
        log = server.new_log()
        blocks = sanitizer_blocks(log)
        crashed = bool(CRASH_RE.search(log))
        if expect is None:
            good = not blocks and not crashed and 'canary error' in p.stderr
        else:
            good = crashed and any(expect in b for b in blocks)
        print('   canary %-15s %s' % (kind, 'reported' if good and expect else
                                       'clean ERROR, no report' if good else 'NOT AS EXPECTED'))
        if not good:
            ok = False
            print(log[-3000:])
    server.psql('DROP FUNCTION cr_sanitize_canary(text);', db='postgres')
    if not ok:
        raise SystemExit('driver: the sanitizer setup does not report deliberate bugs')


def script(case):
    """A failing case as a psql script of its own."""
    return ('-- credit_risk sanitize case %d, seed %d; tags: %s\n'
            '-- psql -X -d DB -f THIS (in a database with CREATE EXTENSION credit_risk)\n'
            '\\set ON_ERROR_STOP off\n\\set VERBOSITY verbose\n'
            % (case.number, case.seed, ' '.join(sorted(case.tags)))
            + case.sql(markers=False).replace(' \\gset', ';').replace('\\if :trained\n', '')
            .replace('\\endif\n', '').replace('\\set trained 0\n', ''))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--host', help='server socket directory')
    ap.add_argument('--port', type=int, default=56231)
    ap.add_argument('--user', default='postgres')
    ap.add_argument('--log', help='server log file, scanned for crashes and sanitizer reports')
    ap.add_argument('--cases', type=int, default=300)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--start', type=int, default=1, help='first case number')
    ap.add_argument('--only', default='', help='comma-separated case numbers to run')
    ap.add_argument('--skip', default='', help='comma-separated case tags to skip (see --tags)')
    ap.add_argument('--batch', type=int, default=20, help='cases per psql session')
    ap.add_argument('--statement-timeout', type=int, default=120)
    ap.add_argument('--batch-timeout', type=int, default=900)
    ap.add_argument('--max-rows', type=int, default=2000)
    ap.add_argument('--max-features', type=int, default=30)
    ap.add_argument('--max-trees', type=int, default=20)
    ap.add_argument('--canary', help='canary library: check first that deliberate bugs are reported')
    ap.add_argument('--verbose', action='store_true', help='print every training outcome and failed call')
    ap.add_argument('--inject', default='',
                    help='N:KIND[,N:KIND...]: run canary KIND (heap-overflow, segv, ...; or sleep) '
                    'at the end of case N, to check that the driver reports it')
    ap.add_argument('--dump', type=int, help='print case N as a psql script and exit')
    ap.add_argument('--tags', type=int, help='print the tags of case N and exit')
    ap.add_argument('--failures-dir', help='where to write the SQL of failing cases')
    ap.add_argument('--replay', default='test/sanitize/run.sh', help='command shown for replays')
    args = ap.parse_args()

    if args.dump is not None:
        sys.stdout.write(script(Case(args.seed, args.dump, args)))
        return 0
    if args.tags is not None:
        print(' '.join(sorted(Case(args.seed, args.tags, args).tags)))
        return 0
    if not args.host or not args.log:
        ap.error('--host and --log are needed to run cases')

    server = Server(args)
    if not server.wait_ready(30):
        raise SystemExit('driver: cannot connect to the server')
    p = server.psql('SELECT 1 FROM pg_database WHERE datname = %s;' % lit(DB), db='postgres')
    if p.returncode != 0:
        raise SystemExit('driver: ' + p.stderr)
    server.psql('CREATE DATABASE %s;' % DB, db='postgres')
    p = server.psql('\\set ON_ERROR_STOP on\nCREATE EXTENSION IF NOT EXISTS credit_risk;\n')
    if p.returncode != 0:
        raise SystemExit('driver: cannot create the extension: ' + p.stderr)
    if args.canary:
        canary(server, args)
    inject = dict((int(x.split(':')[0]), x.split(':')[1]) for x in args.inject.split(',') if x)
    if inject:
        server.psql("CREATE OR REPLACE FUNCTION cr_sanitize_canary(text) RETURNS int LANGUAGE c STRICT AS %s;"
                    % lit(args.canary))

    if args.only:
        numbers = [int(x) for x in args.only.split(',') if x]
    else:
        numbers = list(range(args.start, args.start + args.cases))
    skip = set(t for t in args.skip.split(',') if t)
    out = Outcome()
    out.verbose = args.verbose
    t0 = time.time()
    queue = []
    for n in numbers:
        c = Case(args.seed, n, args)
        c.inject = inject.get(n)
        if skip & c.tags:
            out.skipped += 1
            continue
        queue.append(c)
    done = 0
    last_report = time.time()
    while queue:
        batch, queue = queue[:args.batch], queue[args.batch:]
        rest = run_batch(server, batch, args, out)
        queue = rest + queue
        done += len(batch) - len(rest)
        if time.time() - last_report > 30:
            last_report = time.time()
            print('   ... %d/%d cases, %d failures, %.0f s' % (done, len(numbers) - out.skipped,
                                                            len(out.failures), time.time() - t0),
                  flush=True)
    seconds = time.time() - t0

    time.sleep(1)
    between(server, out)

    kinds = collections.Counter(f[1] for f in out.failures)
    crashes = sum(v for k, v in kinds.items() if 'crash' in k)
    reports = sum(v for k, v in kinds.items() if 'sanitizer' in k)
    internal = kinds.get('internal error', 0)
    hangs = sum(v for k, v in kinds.items() if 'hang' in k)

    def counts(c):
        return ', '.join('%s x%d' % kv for kv in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) or 'none'

    print('   trained: %s' % counts(out.trained_by))
    print('   training errors by SQLSTATE: %s' % counts(out.train_errors))
    print('   scoring and reading calls: %d answered, errors by SQLSTATE: %s'
          % (out.step_ok, counts(out.step_errors)))
    if out.skipped:
        print('   %d cases skipped (tags: %s)' % (out.skipped, ', '.join(sorted(skip))))
    if out.load_errors:
        print('   %d cases could not load their table (driver bug?): %s'
              % (sum(out.load_errors.values()), counts(out.load_errors)))
    if out.timeouts:
        print('   %d trainings hit statement_timeout (%ds)' % (out.timeouts, args.statement_timeout))

    failing = sorted(set(f[0] for f in out.failures if f[0]))
    for number, kind, step, detail, case in out.failures:
        print('\nFAILED case %d: %s (%s)' % (number, kind, step))
        if case is not None:
            print('   tags: %s' % ' '.join(sorted(case.tags)))
        print('   ' + detail.replace('\n', '\n   '))
        if case is not None and args.failures_dir:
            os.makedirs(args.failures_dir, exist_ok=True)
            path = os.path.join(args.failures_dir, 'case-%d.sql' % number)
            with open(path, 'w') as f:
                f.write(script(case))
            print('   reproducer: %s' % path)
    if failing:
        cases = [f[4] for f in out.failures if f[4] is not None]
        shared = set.intersection(*(c.tags for c in cases)) if cases else set()
        print('\ntags every failing case has: %s' % (' '.join(sorted(shared)) or 'none'))
        print('replay: %s --seed %d --only %s' % (args.replay, args.seed, ','.join(map(str, failing))))

    print('sanitize: %d cases (seed %d), %d trained ok, clean errors: %s; '
          '%d crashes, %d sanitizer reports, %d internal errors, %d hangs, %.0f seconds'
          % (out.cases, args.seed, out.trained, counts(out.train_errors), crashes, reports,
             internal, hangs, seconds))
    return 1 if out.failures else 0


if __name__ == '__main__':
    sys.exit(main())
