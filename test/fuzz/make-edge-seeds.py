#!/usr/bin/env python3
"""Hand-made decoder seeds that cr_train never produces, written into
corpus/decoder/ as edge-*: tree shapes at the limits of the dense copy
(src/model.c, BuildDense).

    edge-gbm-depth10      one tree of depth exactly 10 (the deepest dense copy)
    edge-gbm-dense-guard  a depth-10 tree and 120 one-leaf trees: padding all
                          to depth 10 would pass the size guard, so the
                          decoder must fall back to the node arrays

The byte layout is the one src/model.h documents; the checksum is CRC-32C.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "decoder")


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def section(tag, payload):
    return struct.pack("<HHI", tag, 0, len(payload)) + payload


def name(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b


def gbm_model(trees, features=("x", "y")):
    """trees: lists of nodes (feature, threshold, left, right, default_left, value)."""
    body = section(1, struct.pack("<I", len(features)) + b"".join(name(f) for f in features))
    body += section(2, b"".join(struct.pack("<d", 0.0) for _ in features))
    body += section(3, struct.pack("<ddddI", 0.5, 600.0, 50.0, 20.0, 3)
                    + struct.pack("<dd", 0.2, 0.5) + name("low") + name("medium") + name("high"))
    gbm = struct.pack("<Id", len(trees), -0.5)
    gbm += b"".join(struct.pack("<I", len(t)) for t in trees)
    for t in trees:
        for (f, thr, left, right, dl, value) in t:
            gbm += struct.pack("<idiiBdd", f, thr, left, right, dl, value, 1.0)
    body += section(5, gbm)
    head = struct.pack("<IHHII", 0x444D5243, 1, 2, 0, 20 + len(body))
    return head + struct.pack("<I", crc32c(head + body)) + body


def chain(depth):
    """A tree that splits depth times down one side: node 2d splits, its
    right child 2d + 1 is a leaf and its left child 2d + 2 goes on."""
    nodes = []
    for d in range(depth):
        nodes.append((d % 2, 0.5 - d / 64.0, 2 * d + 2, 2 * d + 1, d % 2, 0.0))
        nodes.append((-1, 0.0, -1, -1, 0, 0.01 * (d + 1)))
    nodes.append((-1, 0.0, -1, -1, 0, -0.25))
    return nodes


def main():
    os.makedirs(OUT, exist_ok=True)
    deep = chain(10)
    leaf = [(-1, 0.0, -1, -1, 0, 0.125)]
    seeds = {
        "edge-gbm-depth10": gbm_model([deep]),
        "edge-gbm-dense-guard": gbm_model([deep] + [leaf] * 120),
    }
    for fname, data in seeds.items():
        with open(os.path.join(OUT, fname), "wb") as f:
            f.write(data)
        print(f"{fname}: {len(data)} bytes")


if __name__ == "__main__":
    main()
