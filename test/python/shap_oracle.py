"""Exact Shapley values of a credit_risk tree model by enumeration.

Reads the trees (cr_model_trees as CSV: tree, node, feature, threshold,
left, right, default_left, value, cover), the feature names and base margin,
and applicants with cr_explain's contributions; for every applicant it
computes the path-dependent Shapley values from their definition:

    phi_i = sum over S in F \\ {i} of |S|! (M - |S| - 1)! / M! (v(S u {i}) - v(S))

where v(S) walks each tree following the applicant for the features in S
and, at a split on any other feature, averages the two children weighted by
their share of cover (child cover / the two children's), and adds base_margin.
This is the quantity path-dependent TreeSHAP computes in polynomial time; here
it is computed in exponential time, independently.  Prints the largest
difference to cr_explain and of base + contributions to the margin.

usage: shap_oracle.py trees.csv model.json applicants.json
"""
import csv
import itertools
import json
import math
import sys


def load_trees(path):
    trees = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            t = int(r['tree'])
            trees.setdefault(t, {})[int(r['node'])] = r
    return [trees[t] for t in sorted(trees)]


def share(tree, node, child):
    l = float(tree[int(tree[node]['left'])]['cover'])
    r = float(tree[int(tree[node]['right'])]['cover'])
    if l + r <= 0.0:
        return 0.5
    return float(tree[child]['cover']) / (l + r)


def tree_value(tree, node, x, names, inset):
    row = tree[node]
    if row['feature'] == '':
        return float(row['value'])
    f = row['feature']
    left, right = int(row['left']), int(row['right'])
    if f in inset:
        v = x[f]
        if v is None:
            go_left = row['default_left'] == 't'
        else:
            go_left = v < float(row['threshold'])
        return tree_value(tree, left if go_left else right, x, names, inset)
    return (share(tree, node, left) * tree_value(tree, left, x, names, inset)
            + share(tree, node, right) * tree_value(tree, right, x, names, inset))


def main():
    trees = load_trees(sys.argv[1])
    model = json.load(open(sys.argv[2]))
    applicants = json.load(open(sys.argv[3]))
    names = model['features']
    base_margin = model['base_margin']
    m = len(names)

    def v(x, inset):
        return base_margin + sum(tree_value(t, 0, x, names, inset) for t in trees)

    worst_phi = 0.0
    worst_base = 0.0
    worst_sum = 0.0
    for a in applicants:
        x = a['x']
        cache = {}

        def val(s):
            if s not in cache:
                cache[s] = v(x, s)
            return cache[s]

        phi = {}
        for i in names:
            others = [f for f in names if f != i]
            total = 0.0
            for k in range(len(others) + 1):
                w = math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
                for s in itertools.combinations(others, k):
                    s = frozenset(s)
                    total += w * (val(s | {i}) - val(s))
            phi[i] = total
        base = val(frozenset())
        got = a['contributions']
        worst_base = max(worst_base, abs(got['(base)'] - base))
        for i in names:
            worst_phi = max(worst_phi, abs(got[i] - phi[i]))
        worst_sum = max(worst_sum, abs(sum(got.values()) - a['margin']))
    print(f"{len(applicants)} {worst_phi:.3e} {worst_base:.3e} {worst_sum:.3e}")


if __name__ == '__main__':
    main()
