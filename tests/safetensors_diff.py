#!/usr/bin/env python3
"""Compares the tensors of two safetensors files (tests/cli_mpi.sh).

  safetensors_diff.py A B TOL [TENSOR_TOL]

Differences are relative to size: ||a - b||_2 / ||a||_2, over all tensors of
the file together (one vector) and per tensor. Exits 1 if the whole file's
exceeds TOL, a tensor's exceeds TENSOR_TOL (default TOL), or the files hold
different tensors (names or shapes). Also prints the largest
element-wise difference relative to the tensor's largest magnitude,
max|a - b| / max|a|, for information: single elements whose gradient nearly
cancels move by up to a few 1e-6 of that under float rounding, as AdamW
normalises every gradient (docs/distributed.md). Reads F32, F64, I32 and I64
tensors (what ramc writes)."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "I32": np.int32}


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(data[base + lo:base + hi], dtype=DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def main():
    a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
    tensor_tol = float(sys.argv[4]) if len(sys.argv) > 4 else tol
    sum_sq, sum_sq_diff = 0.0, 0.0
    if sorted(a) != sorted(b):
        print("different tensors:", sorted(set(a) ^ set(b)))
        return 1
    worst, worst_name, worst_elem, bad = 0.0, "", 0.0, 0
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            print(f"{name}: shapes {a[name].shape} and {b[name].shape}")
            bad += 1
            continue
        x, y = a[name].ravel(), b[name].ravel()
        if x.size == 0:
            continue
        norm, dnorm = np.linalg.norm(x), np.linalg.norm(x - y)
        sum_sq, sum_sq_diff = sum_sq + norm * norm, sum_sq_diff + dnorm * dnorm
        rel = dnorm / norm if norm > 0 else dnorm
        scale = np.max(np.abs(x))
        elem = np.max(np.abs(x - y)) / scale if scale > 0 else np.max(np.abs(x - y))
        worst_elem = max(worst_elem, elem)
        if rel > worst:
            worst, worst_name = rel, name
        if not rel <= tensor_tol:
            print(f"{name}: ||a-b|| / ||a|| = {rel:.3g} > {tensor_tol:g}")
            bad += 1
    whole = np.sqrt(sum_sq_diff / sum_sq) if sum_sq > 0 else np.sqrt(sum_sq_diff)
    if not whole <= tol:
        print(f"all tensors: ||a-b|| / ||a|| = {whole:.3g} > {tol:g}")
        bad += 1
    print(f"{len(a)} tensors: ||a-b||/||a|| {whole:.3g} over all (tolerance {tol:g}), largest per "
          f"tensor {worst:.3g} ({worst_name or '-'}, tolerance {tensor_tol:g}); largest element-wise "
          f"max|a-b|/max|a| {worst_elem:.3g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
