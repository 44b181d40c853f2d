"""Reference side of test/t/015_xgboost_import.pl.

Trains an XGBoost binary:logistic model on generated rows with missing
values, saves it with Booster.save_model (JSON), and writes rows to score,
XGBoost's own probabilities and pred_contribs for them, and mutated copies
of the model JSON (one a line) for the hostile-input part.

usage: xgb_import_reference.py OUTDIR
"""
import copy
import json
import random
import sys

import numpy as np
import xgboost as xgb

out = sys.argv[1]
rng = np.random.default_rng(7)
NFEAT = 8


def rows(n):
    x = rng.normal(size=(n, NFEAT))
    # two columns with few distinct values: many rows sit on a threshold
    x[:, 2] = np.round(x[:, 2], 1)
    x[:, 5] = rng.integers(0, 6, size=n)
    # full double precision elsewhere: XGBoost reads them as 32-bit floats
    x[:, 0] = x[:, 0] * 1000.0
    x[rng.random((n, NFEAT)) < 0.1] = np.nan
    return x


X = rows(5000)
z = (np.nan_to_num(X[:, 0]) / 1000.0 + np.where(np.isnan(X[:, 1]), 1.0, X[:, 1] ** 2)
     - np.nan_to_num(X[:, 2]) * np.nan_to_num(X[:, 3]) + 0.3 * np.nan_to_num(X[:, 5])
     - 1.0 + rng.normal(size=5000))
y = (z > 0).astype(float)
params = {'objective': 'binary:logistic', 'tree_method': 'hist', 'max_depth': 5,
          'eta': 0.3, 'nthread': 2, 'seed': 1}
booster = xgb.train(params, xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=50)
booster.save_model(out + '/model.json')

S = rows(2000)
dm = xgb.DMatrix(S, missing=np.nan)
p = booster.predict(dm)
contribs = booster.predict(dm, pred_contribs=True)
# XGBoost adds the trees' contributions up in 32-bit floats, which moves a
# contribution of 5 by a few 1e-6; the same contributions tree by tree (a
# one-tree slice of the model each), added up in doubles, show how far the
# two computations agree.  Each slice's bias holds the base margin once.
per_tree = np.zeros(contribs.shape)
ntrees = len(booster.get_dump())
for t in range(ntrees):
    per_tree += booster[t:t + 1].predict(dm, pred_contribs=True).astype(np.float64)
base_score = float(json.load(open(out + '/model.json'))['learner']['learner_model_param']['base_score'])
per_tree[:, -1] -= (ntrees - 1) * np.log(base_score / (1.0 - base_score))


def num(v):
    return '' if np.isnan(v) else repr(float(v))


with open(out + '/rows.csv', 'w') as f:
    for i in range(S.shape[0]):
        f.write(','.join([str(i)] + [num(v) for v in S[i]]) + '\n')
with open(out + '/ref.csv', 'w') as f:
    for i in range(S.shape[0]):
        c = '{' + ','.join(repr(float(v)) for v in contribs[i]) + '}'
        c64 = '{' + ','.join(repr(float(v)) for v in per_tree[i]) + '}'
        f.write('%d,%r,"%s","%s"\n' % (i, float(p[i]), c, c64))

# XGBoost's exact method with gamma prunes nodes after growing a tree and
# keeps them, unreachable, in the saved arrays.
pruned = xgb.train({'objective': 'binary:logistic', 'tree_method': 'exact', 'max_depth': 6,
                    'gamma': 2.0, 'nthread': 2, 'seed': 1},
                   xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=20)
pruned.save_model(out + '/pruned.json')
pruned_p = pruned.predict(dm)
deleted = sum(int(t['tree_param']['num_deleted'])
              for t in json.load(open(out + '/pruned.json'))['learner']['gradient_booster']['model']['trees'])
with open(out + '/pruned_ref.csv', 'w') as f:
    for i in range(S.shape[0]):
        f.write('%d,%r\n' % (i, float(pruned_p[i])))

# Hostile copies: keys deleted, values of the wrong type or out of range,
# child indices scrambled, arrays cut short.
model = json.load(open(out + '/model.json'))
random.seed(11)
ODD = [None, 'abc', '', 1, -1, 0, 2 ** 31, -2 ** 31 - 1, 10 ** 400, -10 ** 400, 1.5, [], {},
       [1, 2], {'a': 1}, True, False, 'NaN', 'Infinity', '-Infinity', '1e39', 1e39, -1e308,
       '10000000', 1e-320]


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list) and node and len(node) <= 64:
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def at(node, path):
    for k in path:
        node = node[k]
    return node


def mutate(m):
    trees = m['learner']['gradient_booster']['model']['trees']
    t = random.choice(trees)
    n = len(t['left_children'])
    kind = random.randrange(8)
    if kind == 0:
        path = random.choice([p for p in paths(m) if p])
        del at(m, path[:-1])[path[-1]]
    elif kind == 1:
        path = random.choice([p for p in paths(m) if p])
        at(m, path[:-1])[path[-1]] = copy.deepcopy(random.choice(ODD))
    elif kind == 2:
        side = random.choice(['left_children', 'right_children'])
        t[side][random.randrange(n)] = random.randint(-3, n + 3)
    elif kind == 3:
        side = random.choice(['left_children', 'right_children', 'split_indices', 'default_left'])
        random.shuffle(t[side])
    elif kind == 4:
        key = random.choice(['left_children', 'right_children', 'split_conditions',
                             'sum_hessian', 'split_indices', 'default_left', 'base_weights'])
        del t[key][random.randrange(n):]
    elif kind == 5:
        key = random.choice(['split_conditions', 'sum_hessian', 'base_weights', 'loss_changes'])
        t[key][random.randrange(n)] = random.choice([10 ** 400, 1e39, -1e39, 'NaN', None, -5.0])
    elif kind == 6:
        t['tree_param']['num_nodes'] = random.choice(['10000000', '-1', '0', str(n + 1), 'x', 7])
    else:
        # a child pointing at an ancestor or a sibling: a cycle or two parents
        i = random.randrange(n)
        if t['left_children'][i] >= 0:
            t['left_children'][i] = random.randrange(0, i + 1) if random.random() < 0.5 \
                else t['right_children'][i]


with open(out + '/mutants.jsonl', 'w') as f:
    for k in range(250):
        m = copy.deepcopy(model)
        for _ in range(random.randint(1, 3)):
            try:
                mutate(m)
            except (KeyError, IndexError, TypeError, ValueError):
                pass
        f.write(json.dumps(m, allow_nan=False) + '\n')

print(json.dumps({'version': xgb.__version__, 'trees': len(booster.get_dump()), 'deleted': deleted,
                  'missing_train': int(np.isnan(X).sum()), 'missing_score': int(np.isnan(S).sum())}))
