"""scikit-learn + XGBoost reference runs and the report for bench/tune.sh.

  tune_reference.py prepare DIR SHAPE
      Parses DIR/SHAPE.csv (label, then the features, no header; an empty
      field is a missing value) into DIR/SHAPE_{X,y}.npy, so that each timed
      run loads its data with np.load, not with a CSV parser whose memory
      would be counted against the search.

  tune_reference.py search DIR SHAPE NTHREAD TRIALS.json OUT.json
      One timed search, meant to be the only work of a fresh process:
      loads DIR/SHAPE_{X,y}.npy (timed apart), then times
      sklearn.model_selection.RandomizedSearchCV over
      xgboost.XGBClassifier(tree_method='hist', n_jobs=NTHREAD), n_jobs=1,
      5 stratified folds, scoring roc_auc, refit on every row (as cr_tune
      registers its best trial).  Its parameter draws are cr_tune's: every
      dimension of TRIALS.json (cr_tune's result rows) is a distribution
      whose rvs() returns trial 1's value, then trial 2's, ..., which is how
      RandomizedSearchCV samples (one rvs() per dimension per draw), so both
      sides fit the same 20 parameter sets.  Records ru_maxrss before the
      load, after it and after the search.

  tune_reference.py report DIR SHAPES THREADS
      Prints the comparison from DIR/ours_*.json and DIR/theirs_*.json.

Run with Debian's /usr/bin/python3 (python3-xgboost 1.7.4, python3-sklearn).
"""
import json
import os
import resource
import statistics
import sys
import time

# cr_tune's name of a parameter -> XGBClassifier's
XGB_NAMES = {
    'n_trees': 'n_estimators',
    'max_depth': 'max_depth',
    'learning_rate': 'learning_rate',
    'subsample': 'subsample',
    'colsample_bytree': 'colsample_bytree',
    'min_child_weight': 'min_child_weight',
    'lambda': 'reg_lambda',
    'gamma': 'gamma',
    'scale_pos_weight': 'scale_pos_weight',
}


def peak_mb():
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Sequence:
    """A 'distribution' that hands out a fixed list of values in order."""

    def __init__(self, values):
        self.values = list(values)
        self.next = 0

    def rvs(self, random_state=None):
        v = self.values[self.next]
        self.next += 1
        return v


def prepare(directory, shape):
    import numpy as np
    import pandas as pd

    d = pd.read_csv(os.path.join(directory, shape + '.csv'), header=None,
                    dtype=np.float64).to_numpy()
    np.save(os.path.join(directory, shape + '_y.npy'), np.ascontiguousarray(d[:, 0]))
    np.save(os.path.join(directory, shape + '_X.npy'), np.ascontiguousarray(d[:, 1:]))


def search(directory, shape, nthread, trials_path, out_path):
    start_mb = peak_mb()
    import numpy as np
    import sklearn
    import xgboost as xgb
    from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

    imports_mb = peak_mb()
    with open(trials_path) as f:
        trials = json.load(f)
    trials.sort(key=lambda t: t['trial'])
    names = sorted(trials[0]['params'])
    space = {XGB_NAMES[n]: Sequence(t['params'][n] for t in trials) for n in names}

    t0 = time.perf_counter()
    X = np.load(os.path.join(directory, shape + '_X.npy'))
    y = np.load(os.path.join(directory, shape + '_y.npy'))
    load_s = time.perf_counter() - t0
    loaded_mb = peak_mb()

    base = xgb.XGBClassifier(n_estimators=100, tree_method='hist', max_bin=256,
                             n_jobs=nthread, random_state=0)
    rs = RandomizedSearchCV(base, space, n_iter=len(trials), scoring='roc_auc',
                            cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0),
                            refit=True, n_jobs=1, random_state=0)
    t0 = time.perf_counter()
    rs.fit(X, y)
    wall = time.perf_counter() - t0

    # the draws must be cr_tune's, in its order
    drawn = rs.cv_results_['params']
    for t, p in zip(trials, drawn):
        for n in names:
            if p[XGB_NAMES[n]] != t['params'][n]:
                raise SystemExit('draw %d differs in %s' % (t['trial'], n))
    out = {
        'wall_s': wall,
        'load_s': load_s,
        'start_mb': start_mb,
        'imports_mb': imports_mb,
        'loaded_mb': loaded_mb,
        'peak_mb': peak_mb(),
        'best_trial': int(rs.best_index_) + 1,
        'best_auc': float(rs.best_score_),
        'aucs': [float(a) for a in rs.cv_results_['mean_test_score']],
        'rows': int(X.shape[0]),
        'features': int(X.shape[1]),
        'versions': 'xgboost %s, scikit-learn %s' % (xgb.__version__, sklearn.__version__),
    }
    with open(out_path, 'w') as f:
        json.dump(out, f)


def load_runs(directory, prefix):
    runs = []
    k = 1
    while os.path.exists(os.path.join(directory, '%s_r%d.json' % (prefix, k))):
        with open(os.path.join(directory, '%s_r%d.json' % (prefix, k))) as f:
            runs.append(json.load(f))
        k += 1
    return runs


def fmt_mb(v):
    return 'n/a' if v is None else '%.0f' % v


def report(directory, shapes, threads):
    versions = None
    print('%-11s %3s %5s %9s %9s %9s %9s %8s %8s %7s %7s %9s %9s %9s' % (
        'shape', 'thr', 'runs', 'ours best', 'ours med', 'xgb best', 'xgb med',
        'ratio b', 'ratio m', 'AUC us', 'AUC xgb', 'ours MB', 'one-fit', 'xgb MB'))
    notes = []
    for shape in shapes:
        one = load_runs(directory, 'one_%s' % shape)
        for t in threads:
            ours = load_runs(directory, 'ours_%s_t%s' % (shape, t))
            theirs = load_runs(directory, 'theirs_%s_t%s' % (shape, t))
            if not ours or not theirs:
                print('%-11s %3s  missing runs' % (shape, t))
                continue
            versions = theirs[0]['versions']
            ow = [r['wall_s'] for r in ours]
            tw = [r['wall_s'] for r in theirs]
            peak = max(r['peak_mb'] for r in ours if r['peak_mb'] is not None) \
                if any(r['peak_mb'] is not None for r in ours) else None
            start = min(r['start_mb'] for r in ours if r['start_mb'] is not None) \
                if any(r['start_mb'] is not None for r in ours) else None
            one_peak = max((r['peak_mb'] for r in one if r['peak_mb'] is not None), default=None)
            xpeak = max(r['peak_mb'] for r in theirs)
            xloaded = min(r['loaded_mb'] for r in theirs)
            ximports = min(r['imports_mb'] for r in theirs)
            print('%-11s %3s %5d %9.2f %9.2f %9.2f %9.2f %8.2f %8.2f %7.4f %7.4f %9s %9s %9s' % (
                shape, t, len(ours), min(ow), statistics.median(ow), min(tw),
                statistics.median(tw), min(tw) / min(ow),
                statistics.median(tw) / statistics.median(ow),
                ours[-1]['best_auc'], theirs[-1]['best_auc'], fmt_mb(peak),
                fmt_mb(one_peak), '%.0f' % xpeak))
            notes.append('%s, %s thread(s): ours runs %s s (best trial %d, load %.2f s, backend %s MB at '
                         'the start); xgboost runs %s s (best trial %d, process %.0f MB after the imports, '
                         '%.0f MB with the data loaded)' % (
                             shape, t, ', '.join('%.2f' % w for w in ow), ours[-1]['best_trial'],
                             ours[-1]['load_s'], fmt_mb(start), ', '.join('%.2f' % w for w in tw),
                             theirs[-1]['best_trial'], ximports, xloaded))
            diffs = [abs(a - b) for a, b in zip(ours[-1]['aucs'], theirs[-1]['aucs'])]
            notes.append('%s, %s thread(s): per-trial mean CV AUC, ours - xgboost: largest |difference| '
                         '%.4f over %d trials' % (shape, t, max(diffs), len(diffs)))
    print()
    print('ratio = xgboost seconds / ours (above 1: cr_tune is faster); b = best, m = median of the runs;')
    print('ours MB = the backend\'s peak resident set during cr_tune; one-fit = the same for one cr_train')
    print('of the first trial\'s params (no cv); xgb MB = the Python process\'s peak (ru_maxrss)')
    if versions:
        print('reference: ' + versions)
    for n in notes:
        print(n)


def main(argv):
    if len(argv) >= 3 and argv[1] == 'prepare':
        prepare(argv[2], argv[3])
    elif len(argv) == 7 and argv[1] == 'search':
        search(argv[2], argv[3], int(argv[4]), argv[5], argv[6])
    elif len(argv) >= 5 and argv[1] == 'report':
        report(argv[2], argv[3].split(), argv[4].split())
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
