#!/usr/bin/env python3
"""Continuous fuzzing: cycles through every hakmem fuzzer until the time is up or one crashes.

    bazel run --config=fuzz //fuzz:continuous -- --hours=8 [--jobs=2] [--slice-minutes=10]
                                                 [--work-dir=DIR] [--only=alloc_ops,config]

Each driver keeps a growing working corpus in --work-dir (default ~/.cache/hakmem/fuzz/<driver>,
outside the source tree), seeded from the checked-in corpus. A cycle gives every driver one slice
of --jobs parallel libFuzzer processes sharing that corpus; every --merge-every cycles the corpus
is merged (minimised) into a fresh directory. Progress is printed after every slice. On the first
crash it stops, printing the reproducer and the command that replays it. Exit status: 0 when the
time ran out with no crash, 1 on a crash, 2 on a usage error.
"""
import argparse, glob, os, re, shutil, subprocess, sys, time

# Per-driver libFuzzer flags, as in fuzz/BUILD: the config parser warns on stderr for every
# invalid value (gigabytes an hour), so its stderr is closed.
EXTRA_FLAGS = {"config": ["-close_fd_mask=2"]}
LOG_TAIL_BYTES = 1 << 16  # the last status line is near the end of a log

STATUS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)")


def runfile(path):
    """Path of a data dependency, from the runfiles tree bazel run gives us."""
    base = os.environ.get("RUNFILES_DIR") or os.path.abspath(sys.argv[0]) + ".runfiles"
    for candidate in (os.path.join(base, "hakmem", path), os.path.join(os.getcwd(), path)):
        if os.path.exists(candidate):
            return candidate
    sys.exit("continuous: %s not found (run it with bazel run --config=fuzz //fuzz:continuous)" % path)


def is_libfuzzer(binary):
    """The replay main built outside the fuzz config has no libFuzzer flag table."""
    with open(binary, "rb") as f:
        return b"max_total_time" in f.read()


class Driver:
    def __init__(self, name, work_root, seeds, dict_path):
        self.name = name
        self.binary = runfile("fuzz/%s_fuzzer" % name)
        self.seeds = seeds
        self.dict = dict_path
        self.corpus = os.path.join(work_root, name, "corpus")
        self.artifacts = os.path.join(work_root, name, "artifacts") + "/"
        self.execs = 0
        self.seconds = 0.0
        self.cov = 0
        os.makedirs(self.corpus, exist_ok=True)
        os.makedirs(self.artifacts, exist_ok=True)
        for seed in seeds:
            target = os.path.join(self.corpus, "seed_" + os.path.basename(seed))
            if not os.path.exists(target):
                shutil.copyfile(seed, target)

    def corpus_size(self):
        return len(os.listdir(self.corpus))

    def flags(self):
        flags = ["-rss_limit_mb=2560", "-malloc_limit_mb=1024", "-timeout=30",
                 "-artifact_prefix=" + self.artifacts, "-print_final_stats=1"]
        if self.dict:
            flags.append("-dict=" + self.dict)
        return flags + EXTRA_FLAGS.get(self.name, [])

    def fuzz(self, seconds, jobs, log_dir):
        """Runs `jobs` processes on the shared corpus; returns the crash files (empty if none)."""
        before = set(os.listdir(self.artifacts))
        procs = []
        for j in range(jobs):
            log = open(os.path.join(log_dir, "%s.%d.log" % (self.name, j)), "w")
            argv = [self.binary, self.corpus, "-max_total_time=%d" % seconds, "-reload=1"]
            procs.append((subprocess.Popen(argv + self.flags(), stdout=log, stderr=subprocess.STDOUT), log))
        start = time.monotonic()
        failed = False
        for proc, log in procs:
            failed |= proc.wait() != 0
            log.close()
        self.seconds += (time.monotonic() - start) * jobs
        for j in range(jobs):
            with open(os.path.join(log_dir, "%s.%d.log" % (self.name, j)), "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL_BYTES))
                stats = STATUS.findall(f.read().decode(errors="replace"))
            if stats:
                execs, cov, _, _, _ = stats[-1]
                self.execs += int(execs)
                self.cov = max(self.cov, int(cov))
        new = sorted(set(os.listdir(self.artifacts)) - before)
        if failed and not new:
            new = ["(no reproducer written; see %s/%s.*.log)" % (log_dir, self.name)]
        return [os.path.join(self.artifacts, n) for n in new]

    def merge(self):
        fresh = self.corpus + ".merging"
        shutil.rmtree(fresh, ignore_errors=True)
        os.makedirs(fresh)
        proc = subprocess.run([self.binary, "-merge=1", fresh, self.corpus] + self.flags(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if proc.returncode == 0 and os.listdir(fresh):
            shutil.rmtree(self.corpus)
            os.rename(fresh, self.corpus)
        else:
            shutil.rmtree(fresh, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel fuzzer processes per driver (default: one per CPU)")
    parser.add_argument("--slice-minutes", type=float, default=10)
    parser.add_argument("--merge-every", type=int, default=3, help="cycles between merges")
    parser.add_argument("--work-dir", default=os.path.expanduser("~/.cache/hakmem/fuzz"))
    parser.add_argument("--only", help="comma-separated drivers (default: all)")
    parser.add_argument("--drivers", required=True, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.drivers.split(",")
    if args.only:
        unknown = set(args.only.split(",")) - set(names)
        if unknown:
            print("continuous: unknown driver(s) %s; known: %s" % (", ".join(unknown), ", ".join(names)))
            return 2
        names = [n for n in names if n in args.only.split(",")]
    drivers = []
    for name in names:
        seeds = sorted(glob.glob(os.path.join(runfile("fuzz/corpus/" + name), "*")))
        dict_path = runfile("fuzz/config.dict") if name == "config" else None
        drivers.append(Driver(name, args.work_dir, seeds, dict_path))
    if not is_libfuzzer(drivers[0].binary):
        print("continuous: the fuzzers were built without libFuzzer; use --config=fuzz")
        return 2
    log_dir = os.path.join(args.work_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    deadline = time.monotonic() + args.hours * 3600
    print("continuous: %s, %d job(s), corpora and logs under %s" % (
        ", ".join(names), args.jobs, args.work_dir), flush=True)
    cycle = 0
    while time.monotonic() < deadline:
        cycle += 1
        for d in drivers:
            left = deadline - time.monotonic()
            if left < 5:
                break
            crashes = d.fuzz(int(min(args.slice_minutes * 60, left)), args.jobs, log_dir)
            print("[cycle %d] %-10s cov %6d  corpus %6d  execs %12d  %8.0f exec/s  %6.1f CPU-min" % (
                cycle, d.name, d.cov, d.corpus_size(), d.execs, d.execs / max(d.seconds, 1),
                d.seconds / 60), flush=True)
            if crashes:
                print("\nCRASH in %s: %s" % (d.name, crashes[0]))
                print("replay it:  bazel run //fuzz:%s_fuzzer -- %s" % (d.name, crashes[0]))
                print("then fix the bug and check the input in: cp %s fuzz/corpus/%s/regress_<what>"
                      % (crashes[0], d.name))
                return 1
        if cycle % args.merge_every == 0:
            for d in drivers:
                d.merge()
    total = sum(d.seconds for d in drivers) / 3600
    print("continuous: no crash in %.2f CPU-hours" % total)
    for d in drivers:
        print("  %-10s %12d execs  %8.0f exec/s  cov %6d  corpus %6d" % (
            d.name, d.execs, d.execs / max(d.seconds, 1), d.cov, d.corpus_size()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
