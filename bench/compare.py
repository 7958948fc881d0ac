#!/usr/bin/env python3
"""Runs benchmarks under hakmem, glibc and the Debian peers side by side.

Every benchmark runs once per allocator in interleaved order (A B C D E A B C ...), --runs times;
the table shows each allocator's median time and peak RSS, and hakmem's time relative to the
fastest peer. Ratios come from this one run only; absolute times on a shared VM are noise.
Results (JSON, an SVG chart, the table) go to a results directory named at the end.
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import report  # noqa: E402  (lives next to this file in the source tree)

PEERS = {
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
}

# A real program: python3 building, dumping and parsing a JSON document of N entries.
REAL_WORKLOAD = (
    "import json, random\n"
    "random.seed(7)\n"
    "d = [{str(i): [random.random()] * (i %% 50), 'k%%d' %% i: 'v' * (i %% 300)} for i in range(%d)]\n"
    "s = json.dumps(d)\n"
    "print(len(json.loads(s)))\n"
)

# name, program, fixed arguments, the argument --quick divides by 5, the thread count (None: the
# benchmark is single-threaded and --threads leaves it alone).
BENCHMARKS = [
    ("random_mixed", "random_mixed", [], ("iterations", 100000000), None),
    ("tiny_1t", "tiny", [], ("iterations", 100000000), 1),
    ("tiny_2t", "tiny", [], ("iterations", 100000000), 2),
    ("mid_1t", "mid", [], ("iterations", 40000000), 1),
    ("mid_2t", "mid", [], ("iterations", 40000000), 2),
    ("mid_large_mt", "mid_large_mt", [], ("iterations", 10000000), 2),
    ("large", "large", [], ("iterations", 40000), None),
    ("malloc_large", "malloc_large", [], ("iterations", 2000), None),
    ("larson", "larson", [], ("rounds", 3000), 2),
    ("xmalloc", "xmalloc", [], ("iterations", 40000000), 2),
    ("cache_scratch", "cache_scratch", [], ("iterations", 5000000), 2),
    ("cache_thrash", "cache_thrash", [], ("iterations", 5000000), 2),
    ("realloc_growth", "realloc_growth", [], ("iterations", 300000), None),
    ("thread_churn", "thread_churn", [], ("rounds", 20000), 2),
    ("fragmentation", "fragmentation", [], ("rounds", 15), None),
    ("phase_shift", "phase_shift", [], ("iterations", 80000000), None),
    ("idle_return", "idle_return", [], ("mib", 1024), None),
    ("idle_return_churn", "idle_return", ["--churn=1"], ("mib", 1024), None),
]


# Programs that run their threads in producer/consumer pairs.
PAIRED = {"xmalloc"}


def benchmark_argv(bin_dir, program, fixed, scaled, threads, args):
    key, value = scaled
    if args.quick:
        value = max(1, value // 5)
    argv = [os.path.join(bin_dir, program)] + fixed + ["--%s=%d" % (key, value)]
    if threads is not None:
        argv.append("--threads=%d" % threads)
    return argv


def thread_counts(args):
    """The --threads list (None: each benchmark's own count)."""
    if not args.threads:
        return None
    try:
        counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        sys.exit("compare: --threads wants a comma-separated list of positive counts, got %r" %
                 args.threads)
    return counts


def selected(args, bin_dir):
    only = set(args.only.split(",")) if args.only else None
    counts = thread_counts(args)
    rows = []
    for name, program, fixed, scaled, threads in BENCHMARKS:
        if only is not None and name not in only:
            continue
        if threads is None or counts is None:
            rows.append((name, benchmark_argv(bin_dir, program, fixed, scaled, threads, args)))
            continue
        runs_at = sorted({max(2, c + c % 2) if program in PAIRED else c for c in counts})
        for count in runs_at:
            row = name if len(counts) == 1 else "%s@%dt" % (name, count)
            rows.append((row, benchmark_argv(bin_dir, program, fixed, scaled, count, args)))
    if only is None or "python_json" in only:
        entries = 30000 if args.quick else 150000
        rows.append(("python_json", ["python3", "-c", REAL_WORKLOAD % entries]))
    unknown = (only or set()) - {b[0] for b in BENCHMARKS} - {"python_json"}
    if unknown:
        sys.exit("compare: unknown benchmark(s) %s; known: %s" % (
            ", ".join(sorted(unknown)), ", ".join([b[0] for b in BENCHMARKS] + ["python_json"])))
    return rows


def run_once(launcher, argv, preload):
    """preload: None (glibc), or (path of a .so, ["VAR=VALUE", ...] set for this column)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        path, assignments = preload
        argv = ["env", "LD_PRELOAD=" + path] + assignments + argv
    start = time.monotonic()
    proc = subprocess.run([launcher] + argv, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed under %s (exit %d): %s" % (
            argv[-1 if argv[0] == "env" else 0], preload[0] if preload else "glibc", proc.returncode,
            proc.stderr[-500:]))
    result = {"seconds": wall, "peak_rss": 0, "extra": {}}
    for word in proc.stdout.split():
        key, sep, value = word.partition("=")
        if not sep:
            continue
        if key == "seconds":
            result["seconds"] = float(value)  # the benchmark's own timed section
        elif key not in ("ops", "mops_per_s"):
            try:
                result["extra"][key] = float(value)
            except ValueError:
                pass
    for word in proc.stderr.split():
        if word.startswith("peak_rss_kb="):
            result["peak_rss"] = int(word.split("=", 1)[1]) * 1024
    return result


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "cpu": cpu, "memory_gib": round(os.sysconf("SC_PAGE_SIZE") *
                                            os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def commit(workspace):
    try:
        return subprocess.run(["git", "-C", workspace, "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--so", required=True, help="libhakmem.so to preload")
    parser.add_argument("--extra", action="append", default=[],
                        metavar="hakmem-NAME=[VAR=VALUE,...@]PATH",
                        help="another build or setting of hakmem to run as its own column (not a "
                        "peer), e.g. hakmem-secure=bazel-out/k8-optsecure/bin/hakmem/libhakmem.so "
                        "or hakmem-ace-off=HAKMEM_ACE=0@bazel-bin/hakmem/libhakmem.so")
    parser.add_argument("--peers", help="comma-separated peers to run (glibc, mimalloc, jemalloc, "
                        "tcmalloc; 'none' for hakmem columns only; default all installed)")
    parser.add_argument("--bin-dir", required=True, help="directory of the benchmark binaries")
    parser.add_argument("--runs", type=int, help="runs per allocator (default 5, --quick 3)")
    parser.add_argument("--only", help="comma-separated benchmark names to run")
    parser.add_argument("--threads", help="thread counts for the multi-thread benchmarks, e.g. "
                        "4 or 1,2,4,8,16 (one row per count, named larson@4t; xmalloc runs "
                        "pairs, so an odd count runs one more thread)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=PATH",
                        help="another allocator's LD_PRELOAD library to run as a peer, e.g. "
                        "snmalloc=/tmp/peers/libsnmallocshim.so (a build of mimalloc 3.x or "
                        "snmalloc made beside the project, never committed)")
    parser.add_argument("--quick", action="store_true", help="inputs 5x smaller, 3 runs")
    parser.add_argument("--results-dir", help="where to write results (default: "
                        "bench-results/<date-time> in the workspace)")
    parser.add_argument("--update-doc", action="store_true",
                        help="also rewrite the results section of docs/BENCHMARKS.md")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY", os.getcwd())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = args.results_dir or os.path.join(workspace, "bench-results", stamp)
    so = os.path.abspath(args.so)
    launcher = os.path.abspath(os.path.join(args.bin_dir, "peak_rss_run"))
    if "-opt" not in os.path.realpath(so):
        print("note: %s is not a release build; use --config=release for numbers" % so)

    allocators = {"hakmem": (so, [])}
    for extra in args.extra:
        name, sep, spec = extra.partition("=")
        assignments, at, path = spec.rpartition("@")
        assignments = [a for a in assignments.split(",") if a] if at else []
        path = os.path.join(workspace, path)  # relative to the workspace, as bazel run is not
        if (not sep or not name.startswith("hakmem-") or not os.path.exists(path) or
                any("=" not in a for a in assignments)):
            sys.exit("compare: --extra wants hakmem-NAME=[VAR=VALUE,...@]PATH of an existing .so, "
                     "got %r" % extra)
        allocators[name] = (os.path.abspath(path), assignments)
    wanted = set(args.peers.split(",")) if args.peers else None
    unknown = (wanted or set()) - set(PEERS) - {"glibc", "none"}
    if unknown:
        sys.exit("compare: unknown peer(s) %s" % ", ".join(sorted(unknown)))
    if wanted is None or "glibc" in wanted:
        allocators["glibc"] = None
    for name, path in PEERS.items():
        if wanted is not None and name not in wanted:
            continue
        if os.path.exists(path):
            allocators[name] = (path, [])
        else:
            print("note: %s not installed (%s), skipped" % (name, path))

    for peer in args.peer:
        name, sep, path = peer.partition("=")
        if (not sep or not name or name.startswith("hakmem") or name in allocators or
                not os.path.exists(path)):
            sys.exit("compare: --peer wants NAME=PATH of an existing library under a new name, "
                     "got %r" % peer)
        allocators[name] = (os.path.abspath(path), [])

    rows = selected(args, args.bin_dir)
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
               "commit": commit(workspace), "runs": runs, "quick": args.quick,
               "allocators": {n: " ".join(p[1] + [p[0]]) if p else "glibc"
                              for n, p in allocators.items()},
               "benchmarks": []}
    started = time.monotonic()
    for index, (bench, argv) in enumerate(rows):
        samples = {name: [] for name in allocators}
        for r in range(runs):
            for name, preload in allocators.items():
                samples[name].append(run_once(launcher, argv, preload))
        entry = {"name": bench, "argv": [os.path.basename(argv[0])] + argv[1:], "results": {}}
        for name, runs_of in samples.items():
            times = [s["seconds"] for s in runs_of]
            entry["results"][name] = {
                "seconds": times, "median_seconds": statistics.median(times),
                "peak_rss": max(s["peak_rss"] for s in runs_of),
                "extra": {k: statistics.median(s["extra"][k] for s in runs_of)
                          for k in runs_of[0]["extra"]}}
        results["benchmarks"].append(entry)
        print("[%d/%d %4.0fs] %s" % (index + 1, len(rows), time.monotonic() - started,
                                     report.progress_line(entry)), file=sys.stderr, flush=True)

    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, "results.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    table = report.text_table(results)
    with open(os.path.join(out_dir, "table.txt"), "w") as f:
        f.write(table)
    print("\n" + table)
    chart = report.write_chart(results, out_dir)
    if args.update_doc:
        doc = os.path.join(workspace, "docs", "BENCHMARKS.md")
        report.update_doc(results, doc)
        print("updated %s" % doc)
    print("results: %s%s" % (json_path, "" if chart is None else ", chart: " + chart))
    return 0


if __name__ == "__main__":
    sys.exit(main())
