"""References for the raw German credit data (test/t/017_german_categorical.pl).

Reads a CSV (header: the columns, then label "bad", "holdout" 0/1, and the
probabilities of our logistic and tree models), one-hot encodes the
categorical columns (every level; for the logistic reference the same
reference levels as ours, given on the command line), and prints one JSON
object:

- statsmodels Logit on the training rows with our dummy design: its
  coefficients by our names ("checking=A12") and standard errors;
- holdout AUC of scikit-learn's unpenalized LogisticRegression and of
  XGBoost 1.7 (hist, the same tree parameters) on the one-hot columns,
  and of our two models' probabilities.
"""
import csv
import json
import sys

import numpy as np
import statsmodels.api as sm
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

path, categorical, numeric, reference = sys.argv[1], sys.argv[2].split(','), sys.argv[3].split(','), json.loads(sys.argv[4])

with open(path) as fh:
    rows = list(csv.DictReader(fh))
y = np.array([float(r['bad']) for r in rows])
hold = np.array([r['holdout'] == '1' for r in rows])

# levels of the training rows (a level only in the holdout is all zeros)
levels = {c: sorted({r[c] for r, h in zip(rows, hold) if not h}) for c in categorical}


def design(drop_reference):
    cols, names = [], []
    for c in numeric:
        cols.append([float(r[c]) for r in rows])
        names.append(c)
    for c in categorical:
        for lv in levels[c]:
            if drop_reference and lv == reference[c]:
                continue
            cols.append([1.0 if r[c] == lv else 0.0 for r in rows])
            names.append(f'{c}={lv}')
    return np.array(cols).T, names


X, names = design(True)
fit = sm.Logit(y[~hold], sm.add_constant(X[~hold])).fit(disp=0, method='newton', maxiter=100, tol=1e-12)
coef = {'(intercept)': fit.params[0]}
se = {'(intercept)': fit.bse[0]}
for k, n in enumerate(names):
    coef[n] = fit.params[k + 1]
    se[n] = fit.bse[k + 1]

Xo, _ = design(False)
lr = LogisticRegression(penalty='none', solver='newton-cg', max_iter=1000, tol=1e-10)
lr.fit(Xo[~hold], y[~hold])
sk_auc = roc_auc_score(y[hold], lr.predict_proba(Xo[hold])[:, 1])

bst = xgb.train({'objective': 'binary:logistic', 'tree_method': 'hist', 'max_depth': 3,
                 'eta': 0.1, 'reg_lambda': 1.0, 'min_child_weight': 1.0, 'nthread': 1,
                 'base_score': float(y[~hold].mean())},
                xgb.DMatrix(Xo[~hold], label=y[~hold]), num_boost_round=100)
xgb_auc = roc_auc_score(y[hold], bst.predict(xgb.DMatrix(Xo[hold])))

ours_lr = np.array([float(r['p_logistic']) for r in rows])
ours_gbm = np.array([float(r['p_gbm']) for r in rows])
print(json.dumps({
    'coef': coef, 'se': se,
    'sklearn_auc': sk_auc, 'xgboost_auc': xgb_auc,
    'our_logistic_auc': roc_auc_score(y[hold], ours_lr[hold]),
    'our_gbm_auc': roc_auc_score(y[hold], ours_gbm[hold]),
    'holdout_rows': int(hold.sum()),
}))
