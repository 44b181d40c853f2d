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
        'gbm_batch': 'GBM cr_predict_batch',
    }
    fmt = '{:<40} {:>9} {:>9} {:>11} {:>9} {:>10}'
    print(fmt.format('scorer', 'rows', 'best s', 'rows/s', 'us/row', 'x floor'))
    for name in order:
        r = sql[name]
        print(fmt.format(labels.get(name, name), r['rows'], '%.3f' % r['best'],
                         '%.0f' % (r['rows'] / r['best']), '%.3f' % (1e6 * r['best'] / r['rows']),
                         '%.2f' % (r['best'] / floor)))
    for label, best in (('XGBoost predict (DMatrix), nthread=1', xgb_best),
                        ('XGBoost inplace_predict, nthread=1', inplace_best)):
        print(fmt.format(label, x['rows'], '%.3f' % best, '%.0f' % (x['rows'] / best),
                         '%.3f' % (1e6 * best / x['rows']), '%.2f' % (best / floor)))
    print()
    g = sql['gbm_batch']['best']
    print('GBM: cr_predict_batch rows/s / XGBoost predict rows/s = %.2f '
          '(above 1: ours faster); / inplace_predict = %.2f; cr_predict row form / XGBoost predict = %.2f'
          % (xgb_best / g, inplace_best / g, xgb_best / sql['gbm_row']['best']))
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
    if 'gbm_row' in sql and 'gbm_batch' in sql:
        same = sql['gbm_row']['sum'] == sql['gbm_batch']['sum']
        print('GBM sums, row form vs batch: %s' % ('identical' if same else 'DIFFERENT'))
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
