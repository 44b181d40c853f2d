"""Reference side of test/t/016_export.pl: reads cr_export documents with
nothing but the document, and scores rows from them.

For a GBM document it walks the document's own trees ("gbm") in doubles,
and loads its "xgboost" member into XGBoost (Booster(model_file=...)) to
predict and explain with it.  For a logistic document it applies the
coefficients and training means.  The rows come from a CSV (id, then the
features in the model's order; an empty field is missing).

usage: export_check.py DOCUMENT.json ROWS.csv OUTDIR

Writes OUTDIR/scored.csv: id, probability from the document's own content,
and for GBM XGBoost's probability and its pred_contribs as an array
literal (the features' contributions, then the bias).  Prints a JSON
summary on stdout.
"""
import csv
import json
import math
import sys

import numpy as np

doc = json.load(open(sys.argv[1]))
outdir = sys.argv[3]
names = [f['name'] for f in doc['features']]
impute = [f['impute'] for f in doc['features']]

ids = []
rows = []
with open(sys.argv[2]) as fh:
    for rec in csv.reader(fh):
        ids.append(rec[0])
        rows.append([float(v) if v != '' else math.nan for v in rec[1:1 + len(names)]])
X = np.array(rows, dtype=np.float64)


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


summary = {'algorithm': doc['algorithm'], 'rows': len(ids)}
own = []
if doc['algorithm'] == 'logistic':
    lg = doc['logistic']
    coef = [c['coefficient'] for c in lg['coefficients']]
    assert [c['feature'] for c in lg['coefficients']] == names
    for x in rows:
        z = lg['intercept'] + sum(c * (impute[j] if math.isnan(v) else v)
                                  for j, (c, v) in enumerate(zip(coef, x)))
        own.append(sigmoid(z))
else:
    g = doc['gbm']
    for x in rows:
        z = g['base_margin']
        for t in g['trees']:
            i = 0
            while t['feature'][i] >= 0:
                v = x[t['feature'][i]]
                if math.isnan(v):
                    i = t['left'][i] if t['default_left'][i] else t['right'][i]
                else:
                    i = t['left'][i] if v < t['threshold'][i] else t['right'][i]
            z += t['value'][i]
        own.append(sigmoid(z))
    summary['trees'] = len(g['trees'])

    import xgboost as xgb
    path = outdir + '/xgboost_member.json'
    with open(path, 'w') as fh:
        json.dump(doc['xgboost'], fh)
    booster = xgb.Booster(model_file=path)
    dm = xgb.DMatrix(X, missing=np.nan, feature_names=names)
    xp = booster.predict(dm)
    xc = booster.predict(dm, pred_contribs=True)
    summary['xgboost'] = xgb.__version__
    summary['xgboost_trees'] = len(booster.get_dump())

with open(outdir + '/scored.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    for k, key in enumerate(ids):
        if doc['algorithm'] == 'logistic':
            w.writerow([key, repr(own[k]), '', ''])
        else:
            w.writerow([key, repr(own[k]), repr(float(xp[k])),
                        '{' + ','.join(repr(float(c)) for c in xc[k]) + '}'])
print(json.dumps(summary))
