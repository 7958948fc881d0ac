#!/usr/bin/env python3
"""Instructions per malloc+free pair on small sizes, per allocator, counted with callgrind.

fastpath_loop runs N and 2N pairs of malloc(size)+free (with 64 other blocks of the size live, so
no allocator empties a page on every free); the difference of the two totals minus
the difference of main's own instructions (the loop) divided by N is one pair: start-up, warm-up
and the loop itself cancel out. Instruction counts are repeatable, unlike times on a shared VM.
"""
import argparse, os, re, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from compare import PEERS  # noqa: E402

MAIN_LINE = re.compile(r"^\s*([\d,]+)\s+\(.*?\)\s+\S*:main \[(.*)\]\s*$")
TOTAL_LINE = re.compile(r"^\s*([\d,]+)\s+\(.*?\)\s+PROGRAM TOTALS")


def count(loop, size, iterations, preload, scratch):
    """Returns (total instructions, instructions spent in main itself)."""
    out = os.path.join(scratch, "cg.out")
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, loop,
                    "--iterations=%d" % iterations, "--size=%d" % size, "--live=64"],
                   env=env, check=True, capture_output=True)
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", out], check=True,
                               capture_output=True, text=True).stdout
    total = main_self = None
    for line in annotated.splitlines():
        m = TOTAL_LINE.match(line)
        if m:
            total = int(m.group(1).replace(",", ""))
        m = MAIN_LINE.match(line)
        if m and m.group(2).endswith("fastpath_loop"):
            main_self = int(m.group(1).replace(",", ""))
    if total is None or main_self is None:
        raise RuntimeError("cannot read callgrind_annotate output:\n" + annotated[:2000])
    return total, main_self


def per_pair(loop, size, iterations, preload, scratch):
    t1, m1 = count(loop, size, iterations, preload, scratch)
    t2, m2 = count(loop, size, 2 * iterations, preload, scratch)
    return ((t2 - t1) - (m2 - m1)) / iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--so", required=True, help="libhakmem.so to preload")
    parser.add_argument("--loop", required=True, help="the fastpath_loop binary")
    parser.add_argument("--sizes", default="16,32,64,128,256,512,1024")
    parser.add_argument("--iterations", type=int, default=100000)
    args = parser.parse_args()
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0:
        sys.exit("fastpath: valgrind is not installed (./bazelw installs it)")
    allocators = [("hakmem", os.path.abspath(args.so)), ("glibc", None)]
    allocators += [(n, p) for n, p in PEERS.items() if os.path.exists(p)]
    sizes = [int(s) for s in args.sizes.split(",")]
    loop = os.path.abspath(args.loop)
    print("instructions per malloc(size)+free pair (callgrind, %d vs %d pairs)" % (
        args.iterations, 2 * args.iterations))
    print("%-10s" % "size" + "".join("%10s" % n for n, _ in allocators), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            cells = [per_pair(loop, size, args.iterations, p, scratch) for _, p in allocators]
            print("%-10d" % size + "".join("%10.2f" % c for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
