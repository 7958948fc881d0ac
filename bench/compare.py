#!/usr/bin/env python3
"""Runs benchmarks under hakmem, glibc and the Debian peers side by side.

Every benchmark runs once per allocator in interleaved order (A B C D E A B C ...), --runs times;
the table shows each allocator's median time, peak RSS and time relative to hakmem. Ratios come
from this one run only; absolute times on a shared 2-core VM are noise.
"""
import argparse, os, statistics, subprocess, sys, time

PEERS = {
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
}

REAL_WORKLOAD = (
    "import json, random\n"
    "random.seed(7)\n"
    "d = [{str(i): [random.random()] * (i % 50), 'k%d' % i: 'v' * (i % 300)} for i in range(150000)]\n"
    "s = json.dumps(d)\n"
    "print(len(json.loads(s)))\n"
)


def benchmarks(bin_dir, quick):
    scale = 5 if quick else 1
    return [
        ("random_mixed", [os.path.join(bin_dir, "random_mixed"),
                          "--iterations=%d" % (100000000 // scale)]),
        ("larson_2t", [os.path.join(bin_dir, "larson"), "--threads=2",
                       "--rounds=%d" % (1000 // scale)]),
        ("mid_large_mt", [os.path.join(bin_dir, "mid_large_mt"), "--threads=2",
                          "--iterations=%d" % (4000000 // scale)]),
        ("malloc_large", [os.path.join(bin_dir, "malloc_large"),
                          "--iterations=%d" % (2000 // scale)]),
        ("python_json", ["python3", "-c", REAL_WORKLOAD]),
    ]


def run_once(launcher, argv, preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        argv = ["env", "LD_PRELOAD=" + preload] + argv
    start = time.monotonic()
    proc = subprocess.run([launcher] + argv, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed under %s: %s" % (argv[0], preload or "glibc",
                                                        proc.stderr[-500:]))
    seconds, peak_kb = wall, 0
    for word in proc.stdout.split():
        if word.startswith("seconds="):
            seconds = float(word.split("=", 1)[1])  # the benchmark's own timed section
    for word in proc.stderr.split():
        if word.startswith("peak_rss_kb="):
            peak_kb = int(word.split("=", 1)[1])
    return seconds, peak_kb * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--so", required=True, help="libhakmem.so to preload")
    parser.add_argument("--bin-dir", required=True, help="directory of the benchmark binaries")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="run only the benchmark with this name")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, 3 runs")
    args = parser.parse_args()
    runs = 3 if args.quick and args.runs == 5 else args.runs
    so = os.path.abspath(args.so)
    launcher = os.path.abspath(os.path.join(args.bin_dir, "peak_rss_run"))
    if "-opt" not in os.path.realpath(so):
        print("note: %s is not a release build; use --config=release for numbers" % so)

    allocators = [("hakmem", so), ("glibc", None)]
    for name, path in PEERS.items():
        if os.path.exists(path):
            allocators.append((name, path))
        else:
            print("note: %s not installed (%s), skipped" % (name, path))

    rows = []
    for bench, argv in benchmarks(args.bin_dir, args.quick):
        if args.only and bench != args.only:
            continue
        times = {name: [] for name, _ in allocators}
        rss = {name: [] for name, _ in allocators}
        for r in range(runs):
            for name, preload in allocators:
                seconds, peak = run_once(launcher, argv, preload)
                times[name].append(seconds)
                rss[name].append(peak)
            print("  %s: run %d/%d done" % (bench, r + 1, runs), file=sys.stderr, flush=True)
        rows.append((bench, {n: statistics.median(t) for n, t in times.items()},
                     {n: max(v) for n, v in rss.items()}))

    names = [n for n, _ in allocators]
    print("\nmedian of %d interleaved runs; ratio = allocator time / hakmem time (>1: hakmem faster)"
          % runs)
    print("%-14s" % "benchmark" + "".join("%22s" % n for n in names))
    for bench, med, peak in rows:
        base = med["hakmem"]
        cells = ["%8.3fs x%5.2f %4dM" % (med[n], med[n] / base, peak[n] >> 20) for n in names]
        print("%-14s" % bench + "".join("%22s" % c for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
