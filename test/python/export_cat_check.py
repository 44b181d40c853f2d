"""Score rows with categorical features from a cr_export document alone.

    export_cat_check.py DOC.json ROWS.csv OUTDIR

ROWS.csv: id, then one value per feature in the document's order (a
categorical feature's level as text, an empty field for NULL).  Writes
OUTDIR/scored.csv: id, the probability from walking the document's own
trees in doubles (a category split sends a code in its "categories" left),
XGBoost's predict on the "xgboost" member, and its pred_contribs (one per
feature, then the base) as a PostgreSQL array; prints a JSON summary.
A level is coded as its index in the feature's "levels", any other text
as "other_code", NULL as NaN, as cr_predict codes them.
"""
import csv
import json
import math
import sys

import numpy as np
import xgboost


def main():
    doc_path, rows_path, outdir = sys.argv[1:4]
    with open(doc_path) as f:
        doc = json.load(f)
    feats = doc['features']
    names = [f['name'] for f in feats]

    def code(f, v):
        if v == '':
            return math.nan
        if 'levels' in f:
            return float(f['levels'].index(v)) if v in f['levels'] else float(f['other_code'])
        return float(v)

    ids, X = [], []
    with open(rows_path, newline='') as f:
        for r in csv.reader(f):
            ids.append(int(r[0]))
            X.append([code(feats[j], r[1 + j]) for j in range(len(feats))])

    gbm = doc['gbm']
    own = []
    for x in X:
        m = gbm['base_margin']
        for t in gbm['trees']:
            k = 0
            while t['feature'][k] >= 0:
                v = x[t['feature'][k]]
                cats = t.get('categories', [None] * len(t['feature']))[k]
                if math.isnan(v):
                    left = t['default_left'][k]
                elif cats is not None:
                    left = int(v) in cats
                else:
                    left = v < t['threshold'][k]
                k = t['left'][k] if left else t['right'][k]
            m += t['value'][k]
        own.append(1.0 / (1.0 + math.exp(-m)))

    member = outdir + '/xgb.json'
    with open(member, 'w') as f:
        json.dump(doc['xgboost'], f)
    booster = xgboost.Booster(model_file=member)
    types = ['c' if 'levels' in f else 'q' for f in feats]
    dm = xgboost.DMatrix(np.array(X, dtype=np.float32), feature_names=names,
                         feature_types=types, enable_categorical=True)
    pred = booster.predict(dm)
    contribs = booster.predict(dm, pred_contribs=True)

    with open(outdir + '/scored.csv', 'w', newline='') as f:
        w = csv.writer(f)
        for i, id_ in enumerate(ids):
            w.writerow([id_, repr(own[i]), repr(float(pred[i])),
                        '{' + ','.join(repr(float(c)) for c in contribs[i]) + '}'])
    cat_nodes = sum(sum(1 for s in t['split_type'] if s == 1)
                    for t in doc['xgboost']['learner']['gradient_booster']['model']['trees'])
    print(json.dumps({'rows': len(ids), 'xgboost': xgboost.__version__,
                      'trees': len(gbm['trees']), 'xgboost_category_splits': cat_nodes}))


if __name__ == '__main__':
    main()
