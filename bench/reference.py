"""Reference fits and the report for bench/train_logistic.sh.

  reference.py fit DATA.csv OURS.csv REPS OUT.json
      DATA.csv: label, then the features in the model's order (no header).
      OURS.csv: feature, coefficient from credit_risk.cr_coefficients.
      Times the CSV load once, and scikit-learn's and statsmodels' fits
      (best of REPS, data already in memory), and compares coefficients.

  reference.py report DIR
      Prints the table from DIR/*.ours.json and DIR/*.ref.json.

Run with Debian's /usr/bin/python3 (python3-sklearn, python3-statsmodels).
"""
import json
import os
import statistics
import sys
import time
import warnings


def best_of(reps, fn):
    times = []
    result = None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def fit(data_path, ours_path, reps, out_path):
    import numpy as np
    import sklearn
    import statsmodels
    import statsmodels.api as sm
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    try:
        import pandas as pd
        d = pd.read_csv(data_path, header=None, dtype=np.float64).to_numpy()
        loader = 'pandas.read_csv'
    except ImportError:
        d = np.loadtxt(data_path, delimiter=',', ndmin=2)
        loader = 'numpy.loadtxt'
    y = np.ascontiguousarray(d[:, 0])
    X = np.ascontiguousarray(d[:, 1:])
    load_s = time.perf_counter() - t0
    del d
    Xc = sm.add_constant(X, has_constant='add')

    ours = []
    with open(ours_path) as f:
        for line in f:
            if line.strip():
                ours.append(float(line.rsplit(',', 1)[1]))
    ours = np.array(ours)

    # newton-cholesky is new in 1.2; lbfgs is the fallback on older releases
    solver = 'newton-cholesky'
    try:
        LogisticRegression(penalty=None, solver=solver).fit(X[:50], y[:50])
    except (ValueError, TypeError):
        solver = 'lbfgs'
    sk_warnings = []

    def sk_fit():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            m = LogisticRegression(penalty=None, solver=solver, tol=1e-8,
                                   max_iter=1000).fit(X, y)
        sk_warnings.extend(str(w.message).splitlines()[0] for w in caught)
        return m

    sk_s, sk_times, sk = best_of(reps, sk_fit)
    sk_coef = np.concatenate([sk.intercept_, sk.coef_[0]])

    def sm_fit():
        return sm.Logit(y, Xc).fit(method='newton', tol=1e-8, maxiter=100, disp=0)

    sm_s, sm_times, smr = best_of(reps, sm_fit)
    sm_coef = np.asarray(smr.params)

    def diffs(ref):
        a = np.abs(ours - ref)
        return float(a.max()), float((a / np.abs(ref)).max())

    out = {
        'rows': int(X.shape[0]), 'features': int(X.shape[1]),
        'load_s': load_s, 'loader': loader,
        'sklearn_version': sklearn.__version__, 'sklearn_solver': solver,
        'sklearn_s': sk_s, 'sklearn_times': sk_times,
        'sklearn_iter': int(np.max(sk.n_iter_)), 'sklearn_warnings': sorted(set(sk_warnings)),
        'statsmodels_version': statsmodels.__version__,
        'statsmodels_s': sm_s, 'statsmodels_times': sm_times,
        'statsmodels_iter': int(smr.mle_retvals['iterations']),
        'statsmodels_converged': bool(smr.mle_retvals['converged']),
    }
    out['coef_absdiff_sklearn'], out['coef_reldiff_sklearn'] = diffs(sk_coef)
    out['coef_absdiff_statsmodels'], out['coef_reldiff_statsmodels'] = diffs(sm_coef)
    with open(out_path, 'w') as f:
        json.dump(out, f, indent=1)


def runs(times):
    if len(times) <= 5:
        return ', '.join('%.3f' % t for t in times)
    t = sorted(times)
    return 'min %.4f, median %.4f, max %.4f of %d' % (t[0], t[len(t) // 2], t[-1], len(t))


def report(directory):
    names = sorted(n[:-len('.ours.json')] for n in os.listdir(directory)
                   if n.endswith('.ours.json'))
    rows = []
    for name in names:
        with open(os.path.join(directory, name + '.ours.json')) as f:
            ours = json.load(f)
        with open(os.path.join(directory, name + '.ref.json')) as f:
            ref = json.load(f)
        rows.append((name, ours, ref))
    rows.sort(key=lambda r: -r[2]['rows'])

    # best and median of the runs of each side
    head = ('dataset', 'rows', 'feat', 'ours b', 'ours m', 'sk b', 'sk m', 'sk/ours b', 'sk/ours m',
            'statsm b', 'sm/ours b', 'max|coef diff| sk', 'max rel diff sk')
    fmt = '{:<10} {:>9} {:>4} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>8} {:>9} {:>17} {:>15}'
    print(fmt.format(*head))
    for name, o, r in rows:
        om = statistics.median(o['train_times'])
        sm = statistics.median(r['sklearn_times'])
        print(fmt.format(name, r['rows'], r['features'], '%.3f' % o['train_s'], '%.3f' % om,
                         '%.3f' % r['sklearn_s'], '%.3f' % sm,
                         '%.2f' % (r['sklearn_s'] / o['train_s']), '%.2f' % (sm / om),
                         '%.3f' % r['statsmodels_s'], '%.2f' % (r['statsmodels_s'] / o['train_s']),
                         '%.2e' % r['coef_absdiff_sklearn'], '%.2e' % r['coef_reldiff_sklearn']))
    print()
    fmt = '{:<10} {:>11} {:>11} {:>11} {:>13} {:>13} {:>9}'
    print(fmt.format('dataset', 'count(*) s', 'sum(x) s', 'ours s', 'ours/count', 'ours/sum(x)',
                     'load s'))
    for name, o, r in rows:
        print(fmt.format(name, '%.4f' % o['count_s'], '%.4f' % o['sum_s'], '%.3f' % o['train_s'],
                         '%.1fx' % (o['train_s'] / o['count_s']),
                         '%.1fx' % (o['train_s'] / o['sum_s']), '%.3f' % r['load_s']))
    print()
    for name, o, r in rows:
        print('%s: ours %d Newton iterations, %s thread(s) (credit_risk.threads), '
              'train_seconds recorded by the last run %.3f, runs %s;'
              % (name, o['iterations'], o.get('threads') or '?', o['train_seconds'],
                 runs(o['train_times'])))
        print('%s: sklearn %s solver=%s tol=1e-8 %d iterations, runs %s%s;'
              % (name, r['sklearn_version'], r['sklearn_solver'], r['sklearn_iter'],
                 runs(r['sklearn_times']),
                 ('; warnings: ' + ' | '.join(r['sklearn_warnings'])) if r['sklearn_warnings'] else ''))
        print('%s: statsmodels %s newton tol=1e-8 %d iterations, runs %s; max|coef diff| %.2e (rel %.2e);'
              % (name, r['statsmodels_version'], r['statsmodels_iter'],
                 runs(r['statsmodels_times']),
                 r['coef_absdiff_statsmodels'], r['coef_reldiff_statsmodels']))
        print('%s: CSV export %.3f s, load into numpy (%s) %.3f s'
              % (name, o['export_s'], r['loader'], r['load_s']))


def main(argv):
    if len(argv) == 6 and argv[1] == 'fit':
        fit(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) == 3 and argv[1] == 'report':
        report(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
