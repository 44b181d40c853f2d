"""XGBoost reference and the report for bench/score.sh.

  score_xgb.py xgb DIR REPS
      Reads DIR/train.csv (label, then the features in the GBM's order, no
      header, an empty field is a missing value) and DIR/all.csv (the
      features of every row, same order), trains XGBoost 1.7.4 with the
      GBM's parameters on the training rows (two threads; not timed), then
      with nthread=1 times REPS runs of Booster.predict on a DMatrix of all
      rows (built before each run, not timed: the booster caches the
      predictions of a DMatrix it has already seen) and REPS runs of
      Booster.inplace_predict on the numpy array.  Writes DIR/xgb.json.

  score_xgb.py report DIR
      Prints the table from DIR/sql.tsv (lines: name, rows, sum, seconds of
      each run) and DIR/xgb.json.

Run with Debian's /usr/bin/python3 (python3-xgboost 1.7.4, python3-pandas).
"""
import json
import os
import sys
import time


def xgb_run(directory, reps):
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    t0 = time.perf_counter()
    d = pd.read_csv(os.path.join(directory, 'train.csv'), header=None,
                    dtype=np.float64).to_numpy()
    y, Xt = np.ascontiguousarray(d[:, 0]), np.ascontiguousarray(d[:, 1:])
    X = np.ascontiguousarray(pd.read_csv(os.path.join(directory, 'all.csv'), header=None,
                                         dtype=np.float64).to_numpy())
    parse_s = time.perf_counter() - t0

    params = {
        'objective': 'binary:logistic', 'tree_method': 'hist', 'max_bin': 256,
        'max_depth': 6, 'eta': 0.1, 'reg_lambda': 1.0, 'gamma': 0.0,
        'min_child_weight': 1.0, 'subsample': 1.0, 'colsample_bytree': 1.0,
        'base_score': float(y.mean()), 'nthread': 2, 'seed': 42,
    }
    t0 = time.perf_counter()
    booster = xgb.train(params, xgb.DMatrix(Xt, label=y, missing=np.nan, nthread=2),
                        num_boost_round=100)
    train_s = time.perf_counter() - t0
    del Xt, y, d

    booster.set_param({'nthread': 1})
    predict, inplace, dmatrix = [], [], []
    p = None
    for _ in range(reps):
        # a new DMatrix for every run: the booster caches the predictions
        # of a DMatrix it has seen, and a second predict on it costs nothing
        t0 = time.perf_counter()
        dall = xgb.DMatrix(X, missing=np.nan, nthread=1)
        dmatrix.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        p = booster.predict(dall)
        predict.append(time.perf_counter() - t0)
        del dall
    dmatrix_s = min(dmatrix)
    for _ in range(reps):
        t0 = time.perf_counter()
        q = booster.inplace_predict(X, missing=np.nan)
        inplace.append(time.perf_counter() - t0)
    dump = booster.get_dump()
    out = {
        'version': xgb.__version__, 'rows': int(X.shape[0]), 'features': int(X.shape[1]),
        'parse_s': parse_s, 'train_s': train_s, 'dmatrix_s': dmatrix_s,
        'predict_s': predict, 'inplace_s': inplace, 'sum': float(p.sum()),
        'inplace_max_diff': float(np.abs(p - q).max()),
        'n_trees': len(dump), 'leaves': sum(t.count('leaf=') for t in dump),
    }
    with open(os.path.join(directory, 'xgb.json'), 'w') as f:
        json.dump(out, f, indent=1)


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def report(directory):
    sql = {}
    order = []
    with open(os.path.join(directory, 'sql.tsv')) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            name, rows, total, times = parts[0], int(parts[1]), parts[2], [float(t) for t in parts[3:]]
            sql[name] = {'rows': rows, 'sum': total, 'times': times, 'best': min(times)}
            order.append(name)
    with open(os.path.join(directory, 'xgb.json')) as f:
        x = json.load(f)

    floor = sql['floor']['best']
    xgb_best = min(x['predict_s'])
    inplace_best = min(x['inplace_s'])
    labels = {
        'floor': 'floor: sum of the 20 features (scan)',
        'lr_row': 'logistic cr_predict(name, row)',
        'lr_batch': 'logistic cr_predict_batch',
        'gbm_row': 'GBM cr_predict(name, row)',
        'gbm_batch': 'GBM cr_predict_batch (simd auto)',
        'gbm_batch_off': 'GBM cr_predict_batch, simd off',
        'gbm_batch_avx2': 'GBM cr_predict_batch, simd avx2',
        'gbm_batch_avx512': 'GBM cr_predict_batch, simd avx512',
    }
    fmt = '{:<40} {:>9} {:>8} {:>8} {:>11} {:>8} {:>8} {:>8}'
    print(fmt.format('scorer', 'rows', 'best s', 'median s', 'rows/s', 'us/row', 'x floor',
                     'xgb/ours'))
    for name in order:
        r = sql[name]
        print(fmt.format(labels.get(name, name), r['rows'], '%.3f' % r['best'],
                         '%.3f' % median(r['times']),
                         '%.0f' % (r['rows'] / r['best']), '%.3f' % (1e6 * r['best'] / r['rows']),
                         '%.2f' % (r['best'] / floor),
                         '%.2f' % (xgb_best / r['best']) if name.startswith('gbm') else ''))
    for label, runs in (('XGBoost predict (DMatrix), nthread=1', x['predict_s']),
                        ('XGBoost inplace_predict, nthread=1', x['inplace_s'])):
        best = min(runs)
        print(fmt.format(label, x['rows'], '%.3f' % best, '%.3f' % median(runs),
                         '%.0f' % (x['rows'] / best),
                         '%.3f' % (1e6 * best / x['rows']), '%.2f' % (best / floor), ''))
    print('x floor = best seconds / the scan\'s best; xgb/ours = XGBoost predict\'s best / ours '
          '(above 1: ours faster)')
    print()
    g = sql['gbm_batch']['best']
    print('GBM: cr_predict_batch rows/s / XGBoost predict rows/s = %.2f '
          '(above 1: ours faster); / inplace_predict = %.2f; cr_predict row form / XGBoost predict = %.2f'
          % (xgb_best / g, inplace_best / g, xgb_best / sql['gbm_row']['best']))
    print('goals: batch >= 3x XGBoost predict and <= 2x the scan on every simd path; '
          'row form <= 2.5x the scan')
    for name in order:
        if name.startswith('gbm_batch_'):
            r = sql[name]['best']
            print('  %s: %.2fx XGBoost (%s), %.2fx the scan (%s)'
                  % (name[len('gbm_batch_'):], xgb_best / r,
                     'met' if xgb_best / r >= 3 else 'NOT met', r / floor,
                     'met' if r / floor <= 2 else 'NOT met'))
    for name in ('lr_row', 'gbm_row'):
        if name in sql:
            r = sql[name]['best'] / floor
            print('  %s: %.2fx the scan (%s)' % (name, r, 'met' if r <= 2.5 else 'NOT met'))
    print()
    for name in order:
        r = sql[name]
        print('%s: runs %s; sum %s' % (name, ', '.join('%.3f' % t for t in r['times']), r['sum']))
    print('xgboost %s: predict runs %s; inplace_predict runs %s; DMatrix of all rows %.3f s '
          '(not counted); %d trees, %d leaves; sum of probabilities %.6f; '
          'training %.1f s at 2 threads, CSV parse %.1f s (neither counted)'
          % (x['version'], ', '.join('%.3f' % t for t in x['predict_s']),
             ', '.join('%.3f' % t for t in x['inplace_s']), x['dmatrix_s'], x['n_trees'],
             x['leaves'], x['sum'], x['train_s'], x['parse_s']))
    for name in order:
        if name.startswith('gbm_batch') and 'gbm_row' in sql:
            same = sql['gbm_row']['sum'] == sql[name]['sum']
            print('GBM sums, row form vs %s: %s' % (name, 'identical' if same else 'DIFFERENT'))
    if 'lr_row' in sql and 'lr_batch' in sql:
        same = sql['lr_row']['sum'] == sql['lr_batch']['sum']
        print('logistic sums, row form vs batch: %s' % ('identical' if same else 'DIFFERENT'))


def main(argv):
    if len(argv) == 4 and argv[1] == 'xgb':
        xgb_run(argv[2], int(argv[3]))
    elif len(argv) == 3 and argv[1] == 'report':
        report(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
