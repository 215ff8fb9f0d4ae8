"""Anomaly scoring speed: robust z scores per sample per core, vectorised vs per-machine loops.

A simulated history of ``--machines`` machines x ``--hours`` h at ``--hz`` samples/s (one
vibration signal each, float32, a few spikes) is scored by the vectorised
:class:`analytics.detectors.RobustZ` (fit median/MAD per machine on the first
``--train-hours``, then the anomaly score of every sample in [0, 1]) in chunks of
``--chunk`` machines to bound memory. In the same run, the same computation is done by

* a straightforward per-machine, per-sample Python loop (``statistics.median`` for the
  baseline, ``math.exp`` per sample) on ``--loop-machines`` machines, scaled per sample;
* a per-machine numpy loop (one ``RobustZ`` fit and score per machine) on one chunk,

and the scores are checked to agree. Single-threaded (BLAS/OpenMP pinned to one thread
before numpy is imported), so samples/s is samples/s/core. Data generation is not timed.
The drift-sensitive ``mode="cusum"`` is timed on one chunk too (vectorised only).
Usage::

    .venv/bin/python bench/anomaly.py [--machines 1000] [--hours 24] [--chunk 50]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from analytics.detectors import RobustZ  # noqa: E402
from analytics.detectors.base import SCORE_OFFSET, SCORE_SCALE  # noqa: E402
from analytics.detectors.robust import MAD_TO_SD  # noqa: E402


def history(machines: int, samples: int, seed: int) -> np.ndarray:
    """Vibration (mm/s) of ``machines`` machines, (machines, samples) float32, with spikes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((machines, samples), dtype=np.float32)
    x *= rng.uniform(0.1, 0.4, (machines, 1)).astype(np.float32)
    x += rng.uniform(2.0, 6.0, (machines, 1)).astype(np.float32)
    hits = rng.integers(0, x.size, size=x.size // 10_000)
    x.flat[hits] += 5.0
    return x


def vectorised(x: np.ndarray, train: int) -> np.ndarray:
    """RobustZ over all machines of a chunk at once: (M, T) scores."""
    det = RobustZ().fit(x[:, :train, None])
    return det.anomaly_score(x[:, :, None])


def python_loop(row: list[float], train: int, det: RobustZ) -> list[float]:
    """The same computation for one machine, sample by sample in plain Python."""
    center = statistics.median(row[:train])
    mad = statistics.median(abs(v - center) for v in row[:train])
    scale = MAD_TO_SD * mad + max(det.min_scale, det.rel_min_scale * abs(center))
    out = []
    for v in row:
        z = abs(v - center) / scale
        out.append(1.0 - math.exp(-max(z - SCORE_OFFSET, 0.0) / SCORE_SCALE))
    return out


def numpy_loop(x: np.ndarray, train: int) -> np.ndarray:
    """One RobustZ fit and score per machine (a loop over machines, numpy inside)."""
    return np.stack([RobustZ().fit(row[:train]).anomaly_score(row) for row in x])


def main() -> None:
    """Print samples/s/core of the vectorised detector and both loops, ratios and agreement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--hz", type=float, default=1.0)
    parser.add_argument("--train-hours", type=float, default=2.0)
    parser.add_argument("--chunk", type=int, default=50, help="machines per vectorised chunk")
    parser.add_argument("--loop-machines", type=int, default=3, help="machines in the loop")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_t = round(args.hours * 3600 * args.hz)
    train = round(args.train_hours * 3600 * args.hz)
    total = args.machines * n_t
    print(f"{args.machines} machines x {n_t:,} samples = {total:,} samples (float32)", flush=True)

    fast_s, first = 0.0, None
    for lo in range(0, args.machines, args.chunk):
        x = history(min(args.chunk, args.machines - lo), n_t, args.seed + lo)
        started = time.perf_counter()
        scores = vectorised(x, train)
        fast_s += time.perf_counter() - started
        first = (x, scores) if first is None else first
        done = lo + len(x)
        rate = done * n_t / fast_s
        print(
            f"  vectorised {done:>5}/{args.machines} machines  {rate:>14,.0f} samples/s", flush=True
        )
    fast = total / fast_s

    x, scores = first
    started = time.perf_counter()
    RobustZ(mode="cusum").fit(x[:, :train, None]).anomaly_score(x[:, :, None])
    drift = x.size / (time.perf_counter() - started)
    det = RobustZ()
    started = time.perf_counter()
    loop_scores = [python_loop(row.tolist(), train, det) for row in x[: args.loop_machines]]
    slow = args.loop_machines * n_t / (time.perf_counter() - started)
    started = time.perf_counter()
    np_scores = numpy_loop(x, train)
    per_machine = x.size / (time.perf_counter() - started)

    diff_loop = float(np.max(np.abs(np.array(loop_scores) - scores[: args.loop_machines])))
    diff_np = float(np.max(np.abs(np_scores - scores)))
    print(f"vectorised        {fast:>14,.0f} samples/s/core  ({total:,} samples in {fast_s:.1f} s)")
    loop_note = f"({args.loop_machines} machines, scaled)"
    print(
        f"python loop       {slow:>14,.0f} samples/s/core  {loop_note}  ratio {fast / slow:>6.1f}x"
    )
    np_note = f"({len(x)} machines)"
    print(
        f"per-machine numpy {per_machine:>14,.0f} samples/s/core  {np_note}  "
        f"ratio {fast / per_machine:>6.1f}x"
    )
    print(f"vectorised CUSUM  {drift:>14,.0f} samples/s/core  ({len(x)} machines, no loop twin)")
    print(f"max |score difference|: python loop {diff_loop:.2e}, per-machine numpy {diff_np:.2e}")
    ok = diff_loop < 1e-4 and diff_np < 1e-6
    print(
        f"scores agree: {'yes' if ok else 'NO'}; targets >= 5,000,000 samples/s/core and >= 10x: "
        f"{'met' if fast >= 5e6 and fast / slow >= 10 else 'NOT met'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
