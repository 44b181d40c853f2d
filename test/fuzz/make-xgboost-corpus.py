#!/usr/bin/python3
"""Seeds for fuzz_xgboost, written into corpus/xgboost/ (the committed
corpus, so that fuzzing needs no Python).

    model-*   models trained and saved (Booster.save_model, JSON) by
              Debian's python3-xgboost: binary:logistic on rows with
              missing values at depths 1 to 6, a pruned one (gamma: XGBoost
              keeps the pruned nodes in its arrays), many small trees,
              binary:logitraw, reg:logistic, a base_score near 0 and near 1,
              and one without feature names (the import then needs a
              features argument, which the harness does not pass: it is
              refused)
    edge-*    hand-made JSON: values at the ends of the float range, -0 as
              a float (which jsonb turns into 0 on the way back), and
              decimals that round differently to a double than to a float,
              base margins the export cannot write as a float probability,
              unreachable nodes holding junk, the deepest tree an import
              takes and one level more, integers and booleans where XGBoost
              writes floats, names that need escaping, and one refusal of
              each kind (categorical split, a node with two parents, more
              than one class, another booster or objective, no trees, a
              negative cover, values of the wrong type)

Run it with Debian's interpreter, which has numpy and xgboost:

    /usr/bin/python3 test/fuzz/make-xgboost-corpus.py
"""
import json
import os
import tempfile

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "xgboost")


def write(name, text):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        f.write(text)


# ------------------------------------------------------------ trained models


def rows(n, p, seed, missing=0.2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[rng.random(X.shape) < missing] = np.nan
    eta = np.nan_to_num(X[:, 0]) - 0.5 * np.nan_to_num(X[:, 1]) + rng.normal(size=n)
    return X, (eta > 0).astype(int)


def trained(name, params, rounds, names=("util", "history", "age"), n=400, seed=1):
    X, y = rows(n, 3, seed)
    d = xgb.DMatrix(X, label=y, feature_names=list(names) if names else None)
    booster = xgb.train(dict(params, nthread=1, seed=seed), d, num_boost_round=rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        booster.save_model(path)
        with open(path, encoding="utf-8") as f:
            write("model-" + name, f.read())


def trained_models():
    logistic = {"objective": "binary:logistic", "eta": 0.3}
    for depth, rounds in ((1, 3), (2, 3), (3, 2), (4, 2), (5, 1), (6, 1)):
        trained("logistic-d%d" % depth, dict(logistic, max_depth=depth), rounds)
    trained("pruned", dict(logistic, max_depth=6, gamma=3), 2)
    trained("many-trees", dict(logistic, max_depth=2), 25)
    trained("logitraw", {"objective": "binary:logitraw", "max_depth": 3, "base_score": 1.5}, 2)
    trained("reg-logistic", {"objective": "reg:logistic", "max_depth": 3}, 2)
    trained("base-near-0", dict(logistic, max_depth=2, base_score=1e-5), 2)
    trained("base-near-1", dict(logistic, max_depth=2, base_score=0.99999), 2)
    trained("no-names", dict(logistic, max_depth=2), 2, names=None)


# ------------------------------------------------------------ hand-made JSON


class Raw(str):
    """A JSON number written exactly as given."""


def dump(v):
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(dump(x) for x in v) + "]"
    return "{" + ",".join(dump(k) + ":" + dump(x) for k, x in v.items()) + "}"


def tree(spec, nfeatures, tid=0):
    """spec: a leaf value, or (feature, condition, default_left, left, right).
    Nodes are numbered breadth-first, as XGBoost numbers them."""
    nodes = []
    queue = [(spec, 2147483647)]
    while queue:
        s, parent = queue.pop(0)
        nodes.append([s, parent, -1, -1])
        if isinstance(s, tuple):
            me = len(nodes) - 1
            nodes[me][2] = len(nodes) + len(queue)
            nodes[me][3] = nodes[me][2] + 1
            queue.append((s[3], me))
            queue.append((s[4], me))
    n = len(nodes)
    split = [isinstance(s, tuple) for s, _, _, _ in nodes]
    return {
        "base_weights": [Raw("0E0")] * n,
        "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
        "default_left": [int(s[2]) if sp else 0 for (s, _, _, _), sp in zip(nodes, split)],
        "id": tid,
        "left_children": [l for _, _, l, _ in nodes],
        "loss_changes": [Raw("1E0") if sp else Raw("0E0") for sp in split],
        "parents": [p for _, p, _, _ in nodes],
        "right_children": [r for _, _, _, r in nodes],
        "split_conditions": [s[1] if sp else s for (s, _, _, _), sp in zip(nodes, split)],
        "split_indices": [s[0] if sp else 0 for (s, _, _, _), sp in zip(nodes, split)],
        "split_type": [0] * n,
        "sum_hessian": [Raw("1E1")] * n,
        "tree_param": {"num_deleted": "0", "num_feature": str(nfeatures),
                       "num_nodes": str(n), "size_leaf_vector": "0"},
    }


def model(trees, names=("x", "y"), objective="binary:logistic", base_score="5E-1",
          booster="gbtree", num_class="0", tree_info=None):
    nf = len(names)
    return {
        "learner": {
            "attributes": {},
            "feature_names": list(names),
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(len(trees)),
                                           "size_leaf_vector": "0"},
                    "tree_info": tree_info if tree_info is not None else [0] * len(trees),
                    "trees": [tree(t, nf, i) for i, t in enumerate(trees)],
                },
                "name": booster,
            },
            "learner_model_param": {"base_score": base_score, "boost_from_average": "1",
                                    "num_class": num_class, "num_feature": str(nf), "num_target": "1"},
            "objective": {"name": objective, "reg_loss_param": {"scale_pos_weight": "1"}},
        },
        "version": [1, 7, 4],
    }


L = Raw  # leaf values and conditions written as given

# the float range's ends, zero both ways, the smallest subnormal
FLOAT_EDGES = (0, Raw("-3.4028235E38"), True,
               (1, Raw("3.4028235E38"), False, L("-3.4028235E38"), L("1E-45")),
               (0, Raw("-0E0"), False,
                (1, Raw("1.4E-45"), True, L("3.4028235E38"), L("-1E-45")),
                (1, Raw("-1.17549435E-38"), False, L("0E0"), L("-0E0"))))

# 0.5 + 2^-25, the midpoint between the floats 0.5 and 0.50000006, plus a
# little: a float reading rounds it up, a double reading lands on the
# midpoint (whose float, to even, is 0.5)
MIDPOINT = "0.50000002980232238769531250000000001"


def chain(depth, leaf=L("1E0")):
    spec = leaf
    for d in range(depth):
        spec = (d % 2, Raw("%d.5E-1" % (d % 9)), d % 3 == 0, spec, L("-1E0"))
    return spec


def edge_models():
    simple = (0, Raw("5E-1"), True, L("-1E0"), L("1E0"))
    write("edge-float-edges", dump(model([FLOAT_EDGES, simple])))
    write("edge-midpoint", dump(model([(0, Raw(MIDPOINT), False, L(MIDPOINT), L("-" + MIDPOINT))])))
    write("edge-logitraw-17", dump(model([simple], objective="binary:logitraw", base_score="1.7E1")))
    write("edge-logitraw-shift", dump(model([simple, (1, Raw("0E0"), False, L("3.4E38"), L("-2E0"))],
                                            objective="binary:logitraw", base_score="-2E2")))
    write("edge-logitraw-huge", dump(model([(0, Raw("1E0"), True, L("3.4028235E38"), L("-1E0"))],
                                           objective="binary:logitraw", base_score="3.4E38")))
    write("edge-base-subnormal", dump(model([simple], base_score="1E-40")))
    write("edge-base-min-normal", dump(model([simple], objective="reg:logistic",
                                             base_score="1.1754944E-38")))
    write("edge-single-leaves", dump(model([L("1E0"), L("-2.5E-1"), simple, L("0E0")])))
    # values that are -0 as floats, which jsonb cannot hold after the export
    m = model([(0, Raw("-1E-50"), False, L("-2.88486E-261"), L("1E0"))])
    m["learner"]["gradient_booster"]["model"]["trees"][0]["sum_hessian"] = [Raw("1E0"), Raw("-1E-300"), Raw("1E0")]
    write("edge-negative-zero", dump(m))
    write("edge-deep-64", dump(model([chain(64)])))
    write("edge-deep-65", dump(model([chain(65)])))

    # pruned nodes: 3 (its own child) and 4 are reached from nowhere and hold junk
    m = model([(0, Raw("1E0"), True, L("1E0"), L("2E0"))])
    t = m["learner"]["gradient_booster"]["model"]["trees"][0]
    t["left_children"] += [4, -1]
    t["right_children"] += [3, -1]
    for key in ("split_conditions", "split_indices", "default_left", "base_weights",
                "loss_changes", "sum_hessian", "split_type"):
        t[key] += [None, "x"]
    t["parents"] += [2147483647, 3]
    t["tree_param"]["num_nodes"] = "5"
    t["tree_param"]["num_deleted"] = "2"
    write("edge-unreachable", dump(m))

    # integers and booleans where XGBoost writes floats and integers
    m = model([(1, 2, False, (0, Raw("-1E0"), True, -1, 3), 1)], names=("a", "b"))
    t = m["learner"]["gradient_booster"]["model"]["trees"][0]
    t["default_left"] = [False, True, False, False, False]
    t["left_children"] = [Raw("1.0"), Raw("3E0"), -1, -1, -1]
    m["learner"]["learner_model_param"]["num_class"] = Raw("0")
    m["version"] = [2]
    write("edge-number-forms", dump(m))

    names = ("say \"hi\"\n", "größe ✓", "back\\slash\ttab", "\u007f\u0001", "n" * 63)
    write("edge-names", dump(model([(4, Raw("1E0"), True, (0, Raw("2E0"), False, L("1E0"), L("2E0")),
                                     (3, Raw("-1E0"), True, L("3E0"), L("4E0")))], names=names)))

    # refusals, one of each kind
    m = model([simple])
    m["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = 1
    write("edge-categorical", dump(m))
    m = model([(0, Raw("1E0"), True, L("1E0"), L("2E0"))])
    m["learner"]["gradient_booster"]["model"]["trees"][0]["right_children"][0] = 1
    write("edge-two-parents", dump(m))
    write("edge-multiclass", dump(model([simple, simple], num_class="2", tree_info=[0, 1])))
    write("edge-dart", dump(model([simple], booster="dart")))
    write("edge-softprob", dump(model([simple], objective="multi:softprob")))
    write("edge-not-object", "[1, 2, 3]")
    m = model([simple])
    m["learner"]["gradient_booster"]["model"]["trees"] = []
    m["learner"]["gradient_booster"]["model"]["tree_info"] = []
    write("edge-no-trees", dump(m))
    m = model([simple])
    m["learner"]["gradient_booster"]["model"]["trees"][0]["sum_hessian"][2] = Raw("-1E0")
    write("edge-negative-hessian", dump(m))
    write("edge-name-not-string", dump(model([simple], names=("x", None))))
    m = model([simple])
    m["learner"]["objective"]["name"] = 1
    write("edge-objective-number", dump(m))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.startswith(("model-", "edge-")):
            os.remove(os.path.join(OUT, f))
    trained_models()
    edge_models()
    total = 0
    for f in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, f))
        total += size
        print("%6d %s" % (size, f))
    print("%6d in all" % total)


if __name__ == "__main__":
    main()
