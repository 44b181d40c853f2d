"""XGBoost reference runs and the report for bench/train_gbm.sh.

  xgb_reference.py prepare DIR
      Parses DIR/train.csv and DIR/holdout.csv (label, then the features in
      the model's order, no header; an empty field is a missing value) into
      DIR/{train,holdout}_{X,y}.npy, so that each timed run below loads its
      data with np.load instead of a CSV parser whose own peak memory would
      be counted against XGBoost.  Writes DIR/prepare.json.

  xgb_reference.py train DIR NTHREAD KIND OUT.json
      One timed XGBoost run, meant to be the only work of a fresh process:
      loads the training rows (timed, not counted), builds the DMatrix
      (KIND dmatrix: xgb.DMatrix; KIND quantile: xgb.QuantileDMatrix, which
      bins straight from numpy without a CSR copy), trains, and records
      ru_maxrss right after training; then scores the holdout rows and
      computes their AUC.

  xgb_reference.py report DIR THREADS...
      Prints the comparison table from DIR/ours_t*.json, DIR/ours_t*.scores.csv
      and DIR/xgb_*_t*.json.

Run with Debian's /usr/bin/python3 (python3-xgboost 1.7.4, python3-sklearn).
"""
import json
import os
import resource
import sys
import time


def peak_mb():
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def vm_status_mb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024.0
    return None


def prepare(directory):
    import numpy as np
    import pandas as pd

    out = {}
    for part in ('train', 'holdout'):
        t0 = time.perf_counter()
        d = pd.read_csv(os.path.join(directory, part + '.csv'), header=None,
                        dtype=np.float64).to_numpy()
        out[part + '_parse_s'] = time.perf_counter() - t0
        np.save(os.path.join(directory, part + '_y.npy'), np.ascontiguousarray(d[:, 0]))
        np.save(os.path.join(directory, part + '_X.npy'), np.ascontiguousarray(d[:, 1:]))
        out[part + '_rows'] = int(d.shape[0])
        out['features'] = int(d.shape[1] - 1)
        out[part + '_missing'] = int(np.isnan(d[:, 1:]).sum())
        out[part + '_positives'] = int(d[:, 0].sum())
    with open(os.path.join(directory, 'prepare.json'), 'w') as f:
        json.dump(out, f, indent=1)


def train(directory, nthread, kind, out_path):
    rss_start = vm_status_mb('VmRSS')
    import numpy as np
    import xgboost as xgb
    rss_imported = vm_status_mb('VmRSS')

    t0 = time.perf_counter()
    X = np.load(os.path.join(directory, 'train_X.npy'))
    y = np.load(os.path.join(directory, 'train_y.npy'))
    load_s = time.perf_counter() - t0
    rss_loaded = vm_status_mb('VmRSS')

    base_score = float(y.mean())
    params = {
        'objective': 'binary:logistic', 'tree_method': 'hist', 'max_bin': 256,
        'max_depth': 6, 'eta': 0.1, 'reg_lambda': 1.0, 'gamma': 0.0,
        'min_child_weight': 1.0, 'subsample': 1.0, 'colsample_bytree': 1.0,
        'scale_pos_weight': 1.0, 'base_score': base_score, 'nthread': nthread,
        'seed': 42,
    }
    n_trees = 100

    t0 = time.perf_counter()
    if kind == 'quantile':
        dtrain = xgb.QuantileDMatrix(X, label=y, missing=np.nan, nthread=nthread,
                                     max_bin=params['max_bin'])
    else:
        dtrain = xgb.DMatrix(X, label=y, missing=np.nan, nthread=nthread)
    dmatrix_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    booster = xgb.train(params, dtrain, num_boost_round=n_trees)
    train_s = time.perf_counter() - t0
    peak = peak_mb()

    # everything below is outside the timings and the peak
    from sklearn.metrics import roc_auc_score

    Xh = np.load(os.path.join(directory, 'holdout_X.npy'))
    yh = np.load(os.path.join(directory, 'holdout_y.npy'))
    ph = booster.predict(xgb.DMatrix(Xh, missing=np.nan, nthread=nthread))
    pred_file = os.path.basename(out_path[:-len('.json')]) + '.pred.npy'
    np.save(os.path.join(directory, pred_file), ph)
    dump = booster.get_dump()
    out = {
        'version': xgb.__version__, 'kind': kind, 'nthread': nthread,
        'rows': int(X.shape[0]), 'features': int(X.shape[1]),
        'base_score': base_score, 'n_trees': len(dump),
        'leaves': sum(t.count('leaf=') for t in dump),
        'load_s': load_s, 'dmatrix_s': dmatrix_s, 'train_s': train_s,
        'peak_mb': peak, 'rss_start_mb': rss_start, 'rss_imported_mb': rss_imported,
        'rss_loaded_mb': rss_loaded,
        'holdout_rows': int(yh.shape[0]), 'auc': float(roc_auc_score(yh, ph)),
        'pred_file': pred_file,
    }
    with open(out_path, 'w') as f:
        json.dump(out, f, indent=1)


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def report(directory, threads):
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    def load(name):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def runs(prefix, time_of):
        # NAME_rK.json for each repetition: the best time, the largest peak
        found = []
        k = 1
        while True:
            r = load('%s_r%d.json' % (prefix, k))
            if r is None:
                break
            found.append(r)
            k += 1
        if not found:
            return None
        best = dict(min(found, key=time_of))
        best['times'] = [time_of(r) for r in found]
        best['peak_mb'] = max((r['peak_mb'] for r in found if r['peak_mb'] is not None),
                              default=None)
        return best

    prep = load('prepare.json')
    yh = np.load(os.path.join(directory, 'holdout_y.npy'))

    rows = []
    for t in threads:
        ours = runs('ours_t%d' % t, lambda r: r['wall_s'])
        xgb_d = runs('xgb_dmatrix_t%d' % t, lambda r: r['dmatrix_s'] + r['train_s'])
        xgb_q = runs('xgb_quantile_t%d' % t, lambda r: r['dmatrix_s'] + r['train_s'])
        if ours is not None:
            s = pd.read_csv(os.path.join(directory, 'ours_t%d.scores.csv' % t), header=None,
                            dtype=np.float64).to_numpy()
            if s.shape[0] != yh.shape[0] or not np.array_equal(s[:, 0], yh):
                sys.exit('ours_t%d: holdout labels do not line up with the export' % t)
            ours['auc'] = float(roc_auc_score(s[:, 0], s[:, 1]))
            ours['pred'] = s[:, 1]
            ours['score_s'] = load('ours_t%d.score.json' % t)['score_s']
        rows.append((t, ours, xgb_d, xgb_q))

    def f(fmt, v):
        return 'n/a' if v is None else fmt % v

    head = ('threads', 'ours best', 'ours med', 'xgb best', 'xgb med', 'ratio b', 'ratio m',
            'ours AUC', 'xgb AUC', 'AUC diff', 'ours MB', 'xgb MB', 'ours load s')
    fmt = '{:>7} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>7} {:>7} {:>11}'
    print(fmt.format(*head))
    for t, o, x, _ in rows:
        xs = x['dmatrix_s'] + x['train_s'] if x else None
        os_ = o['wall_s'] if o else None
        xm = median(x['times']) if x else None
        om = median(o['times']) if o else None
        print(fmt.format(
            t, f('%.2f', os_), f('%.2f', om), f('%.2f', xs), f('%.2f', xm),
            f('%.2f', xs / os_ if o and x else None),
            f('%.2f', xm / om if o and x else None),
            f('%.5f', o['auc'] if o else None), f('%.5f', x['auc'] if x else None),
            f('%+.5f', o['auc'] - x['auc'] if o and x else None),
            f('%.0f', o['peak_mb'] if o else None), f('%.0f', x['peak_mb'] if x else None),
            f('%.3f', float(o['metrics']['load_seconds'])
              if o and (o['metrics'] or {}).get('load_seconds') is not None else None)))
    print('ratio = XGBoost seconds / ours (b: best runs, m: medians); above 1: ours faster')
    print()
    print('goals: ratio >= 1.25 (ours <= 0.8 x XGBoost) at the best and the median, '
          'AUC diff >= -0.002, ours MB < xgb MB')
    for t, o, x, _ in rows:
        if not (o and x):
            continue
        ratio = min((x['dmatrix_s'] + x['train_s']) / o['wall_s'],
                    median(x['times']) / median(o['times']))
        verdict = ['time %s' % ('met' if ratio >= 1.25 else 'NOT met'),
                   'AUC %s' % ('met' if o['auc'] >= x['auc'] - 0.002 else 'NOT met'),
                   'memory %s' % ('met' if o['peak_mb'] is not None and o['peak_mb'] < x['peak_mb']
                                  else 'NOT met')]
        print('  threads %d: %s' % (t, ', '.join(verdict)))
    print()

    if prep:
        print('data: %d training rows, %d holdout rows, %d features; %.1f%% / %.1f%% defaults; '
              '%d / %d missing values'
              % (prep['train_rows'], prep['holdout_rows'], prep['features'],
                 100.0 * prep['train_positives'] / prep['train_rows'],
                 100.0 * prep['holdout_positives'] / prep['holdout_rows'],
                 prep['train_missing'], prep['holdout_missing']))
    for t, o, x, q in rows:
        if o:
            m = o['metrics'] or {}
            timings = ', '.join('%s %.3f' % (k, float(v)) for k, v in sorted(m.items())
                                if k.endswith('_seconds') and v is not None)
            # a tree of binary splits has one leaf more than splits
            leaves = ((m['nodes'] + m['n_trees']) // 2
                      if isinstance(m.get('nodes'), int) and isinstance(m.get('n_trees'), int)
                      else None)
            print('threads %d: ours wall %s (%s), train_seconds %.3f%s; n_trees %s, '
                  'best_iteration %s, %s leaves; metrics auc %s on %s; backend VmHWM %s MB '
                  'after, %s MB before cr_train; holdout scoring with cr_predict %.3f s'
                  % (t, '%.3f' % o['wall_s'],
                     'runs ' + ', '.join('%.3f' % w for w in o['times']),
                     o['train_seconds'], ('; ' + timings) if timings else '',
                     m.get('n_trees'), m.get('best_iteration'), f('%d', leaves), m.get('auc'),
                     m.get('evaluated_on'), f('%.0f', o['peak_mb']), f('%.0f', o['start_mb']),
                     o['score_s']))
        if x:
            print('threads %d: xgboost %s DMatrix %.3f s + xgb.train %.3f s (runs %s; '
                  'xgb.train alone / ours %s); np.load %.3f s; %d trees, %d leaves; '
                  'RSS %.0f MB after imports, %.0f MB with the data, peak %.0f MB'
                  % (t, x['version'], x['dmatrix_s'], x['train_s'],
                     ', '.join('%.3f' % w for w in x['times']),
                     f('%.2f', x['train_s'] / o['wall_s'] if o else None), x['load_s'],
                     x['n_trees'], x['leaves'], x['rss_imported_mb'], x['rss_loaded_mb'],
                     x['peak_mb']))
        if q:
            print('threads %d: xgboost QuantileDMatrix %.3f s + xgb.train %.3f s = %.3f s '
                  '(xgb/ours %s); peak %.0f MB; AUC %.5f'
                  % (t, q['dmatrix_s'], q['train_s'], q['dmatrix_s'] + q['train_s'],
                     f('%.2f', (q['dmatrix_s'] + q['train_s']) / o['wall_s'] if o else None),
                     q['peak_mb'], q['auc']))
        if o and x:
            px = np.load(os.path.join(directory, x['pred_file']))
            d = np.abs(o['pred'] - px)
            print('threads %d: holdout probabilities, ours vs xgboost: mean |diff| %.2e, '
                  'max |diff| %.2e, correlation %.6f'
                  % (t, float(d.mean()), float(d.max()), float(np.corrcoef(o['pred'], px)[0, 1])))
    if prep:
        print('CSV parse into numpy (pandas.read_csv, done once, not counted): %.2f s train, '
              '%.2f s holdout' % (prep['train_parse_s'], prep['holdout_parse_s']))


def main(argv):
    if len(argv) == 3 and argv[1] == 'prepare':
        prepare(argv[2])
    elif len(argv) == 6 and argv[1] == 'train' and argv[4] in ('dmatrix', 'quantile'):
        train(argv[2], int(argv[3]), argv[4], argv[5])
    elif len(argv) >= 4 and argv[1] == 'report':
        report(argv[2], [int(t) for t in argv[3:]])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
