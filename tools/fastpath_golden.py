#!/usr/bin/env python3
"""Golden fast paths of the release libhakmem.so: a hot path that grows fails CI.

Most programs spend most of their allocator time in malloc and free with the tiny (<= 1 KiB) and
mid (<= 64 KiB) paths inlined; a few instructions more there cost every program, and no timing
benchmark on a shared VM sees them. As tcmalloc does, fastpath_golden.txt holds (a) the shape of
malloc and free (mnemonics without operands, jump targets by name, the shortest path from the
entry to each ret) and (b) callgrind instructions per malloc+free pair for a tiny and two mid
sizes. Any change of shape, or a count that grows by more than GROWTH_ALLOWED, fails; a count
that drops by more than DROP_ALLOWED fails too, so that the golden file keeps protecting the gain.
The developer looks at the difference and updates the golden file on purpose (UPDATE).

The numbers hold for one build (release, gcc, x86_64, not secure): in any other, bazel passes
--skip=REASON and the check passes saying why it was skipped.
"""
import argparse, difflib, os, re, shutil, subprocess, sys, tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree's bench/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "bench"))
from fastpath import per_pair  # noqa: E402  (bench/fastpath.py, in the source tree)

UPDATE = "./bazelw run --config=release //tools:fastpath_golden -- --update"
# The checked functions, with names for their rets in address order (gcc places the tiny path
# first). A ret beyond the names is called retN.
FUNCTIONS = {"malloc": ("tiny-hit", "mid-hit"), "free": ("tiny", "mid")}
SIZES = (64, 4096, 20000)
ITERATIONS = 20000  # against 2 * ITERATIONS: callgrind's counts are exact, more buys nothing
CLOCKLESS_ENV = {"HAKMEM_ACE": "0", "HAKMEM_PURGE_DELAY_MS": "3600000"}
GROWTH_ALLOWED = 0.5
DROP_ALLOWED = 2.0
PREFIXES = {"bnd", "cs", "data16", "ds", "lock", "notrack", "rep", "repe", "repne", "repnz", "repz"}
UNCONDITIONAL = {"jmp", "ret"}
FUNCTION_LINE = re.compile(r"^[0-9a-f]+ <(.+)>:$")
INSN_LINE = re.compile(r"^\s*([0-9a-f]+):\t(\S.*)$")
TARGET = re.compile(r"\b([0-9a-f]+) <([^>+]+)(?:\+0x[0-9a-f]+)?>$")

HEADER = """\
# Golden fast paths of libhakmem.so, checked by //tools:fastpath_golden_test
# (tools/fastpath_golden.py says why). Applies to the release build only: --config=release, gcc,
# x86_64, not secure; every other build skips the test. This file came from a .so built by
# {compiler}.
# When the test fails, look at the difference; if it is meant, update this file on purpose:
#   {update}

# Instructions per malloc(size)+free pair: callgrind, {n} vs {n2} pairs with 64 blocks of the
# size live, and {env}.
# A count that grows by more than {growth} or drops by more than {drop} fails.
"""
SHAPE_HEADER = """
# Shortest path from the entry to each ret, in instructions. malloc: tiny-hit is a tiny class's
# free list hit, mid-hit the thread's mid cache hit; free: tiny is a block of this thread's tiny
# slab, mid a block of this thread's mid segment going to its cache.
{paths}

# The instructions, without operands: .Ln is a jump target inside the function, <name> one
# outside it (the .cold parts are outside). Alignment padding is left out. Any change fails.
{listing}
"""


def disassemble(so):
    """{function: [(address, instruction text)]} for each of FUNCTIONS, from objdump."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", so], check=True,
                         capture_output=True, text=True).stdout
    functions, current = {}, None
    for line in out.splitlines():
        m = FUNCTION_LINE.match(line)
        if m:
            current = functions.setdefault(m.group(1), []) if m.group(1) in FUNCTIONS else None
            continue
        m = INSN_LINE.match(line)
        if m and current is not None:
            current.append((int(m.group(1), 16), m.group(2)))
    missing = sorted(set(FUNCTIONS) - set(functions))
    if missing:
        sys.exit("FAIL: objdump of %s has no %s" % (so, ", ".join(missing)))
    return functions


def mnemonic(text):
    """The mnemonic of an instruction's text, with its prefixes (notrack jmp, lock cmpxchg)."""
    tokens = text.split()
    n = 0
    while n < len(tokens) - 1 and tokens[n] in PREFIXES:
        n += 1
    return " ".join(tokens[:n + 1])


def is_nop(op, text):
    """Whether an instruction is a nop, as gcc pads with them."""
    return "nop" in op or text.split()[:2] == ["xchg", "%ax,%ax"]


def branch_target(fn, op, text):
    """The address of a branch inside fn, the symbol of one outside, else None."""
    m = TARGET.search(text) if op.split()[-1].startswith(("j", "call")) else None
    if m is None:
        return None
    return int(m.group(1), 16) if m.group(2) == fn else m.group(2)


def instructions(fn, lines):
    """[(address, mnemonic, branch target)] of fn without padding: nops after a jmp or ret that
    no branch goes to."""
    decoded = [(address, mnemonic(text), text) for address, text in lines]
    insns = [(address, op, branch_target(fn, op, text)) for address, op, text in decoded]
    targets = {target for _, _, target in insns if isinstance(target, int)}
    kept, padding = [], False
    for (address, op, text), insn in zip(decoded, insns):
        if padding and is_nop(op, text) and address not in targets:
            continue
        kept.append(insn)
        padding = op.split()[-1] in UNCONDITIONAL
    return kept


def path_lengths(insns):
    """{index: instructions run to reach and run it on the shortest path from the entry}."""
    index = {address: i for i, (address, _, _) in enumerate(insns)}
    length, queue = {0: 1}, [0]
    for i in queue:
        _, op, target = insns[i]
        successors = [] if op.split()[-1] in UNCONDITIONAL else [i + 1]
        if isinstance(target, int):
            successors.append(index[target])
        for j in successors:
            if j < len(insns) and j not in length:
                length[j] = length[i] + 1
                queue.append(j)
    return length


def paths(fn, insns):
    """'path FN NAME N' for each ret of fn."""
    length = path_lengths(insns)
    rets = [i for i, (_, op, _) in enumerate(insns) if op.split()[-1] == "ret"]
    names = FUNCTIONS[fn] + tuple("ret%d" % (n + 1) for n in range(len(FUNCTIONS[fn]), len(rets)))
    return ["path %s %s %s" % (fn, name, length.get(i, "unreachable"))
            for name, i in zip(names, rets)]


def listing(fn, insns):
    """fn's instructions, one a line, with .Ln labels for the targets of its inner branches."""
    targets = sorted({t for _, _, t in insns if isinstance(t, int)})
    labels = {t: ".L%d" % (n + 1) for n, t in enumerate(targets)}
    lines = [fn + ":"]
    for address, op, target in insns:
        if address in labels:
            lines.append(labels[address] + ":")
        if isinstance(target, int):
            op += " " + labels[target]
        elif target:
            op += " <%s>" % target
        lines.append("  " + op)
    return lines


def shape(so):
    """(path lines, listing lines) of FUNCTIONS in so."""
    path_lines, listing_lines = [], []
    for fn, lines in disassemble(so).items():
        insns = instructions(fn, lines)
        path_lines += paths(fn, insns)
        listing_lines += listing(fn, insns)
    return path_lines, listing_lines


def pair_counts(so, loop):
    """{size: instructions per malloc+free pair}, with nothing on the clock: the adaptive cache
    engine off (with it the 64 B count went from 29.44 to 30.85 in one run out of four, more often
    with the machine busy) and no purge during the run. The fast paths read neither."""
    for name in [n for n in os.environ if n.startswith("HAKMEM_")]:
        del os.environ[name]
    os.environ.update(CLOCKLESS_ENV)
    with tempfile.TemporaryDirectory() as scratch:
        return {size: per_pair(loop, size, ITERATIONS, so, scratch) for size in SIZES}


def compiler(so):
    """The .comment section of so: the compiler that built it."""
    out = subprocess.run(["readelf", "-p", ".comment", so], capture_output=True, text=True).stdout
    found = re.findall(r"\]\s+(.+)", out)
    return "; ".join(found) if found else "an unknown compiler"


def render(so, pairs, path_lines, listing_lines):
    """The golden file's text."""
    header = HEADER.format(compiler=compiler(so), update=UPDATE, n=ITERATIONS, n2=2 * ITERATIONS,
                           growth=GROWTH_ALLOWED, drop=DROP_ALLOWED,
                           env=" ".join("%s=%s" % kv for kv in CLOCKLESS_ENV.items()))
    pair_lines = "".join("pair %d %.2f\n" % (size, count) for size, count in pairs.items())
    return header + pair_lines + SHAPE_HEADER.format(paths="\n".join(path_lines),
                                                     listing="\n".join(listing_lines))


def parse(text):
    """({size: count} of the pair lines, every other line that is not a comment or empty)."""
    pairs, lines = {}, []
    for line in text.splitlines():
        if line.startswith("pair "):
            _, size, count = line.split()
            pairs[int(size)] = float(count)
        elif line.strip() and not line.startswith("#"):
            lines.append(line)
    return pairs, lines


def pair_failures(golden, measured):
    """One message per size whose count left the allowed band, printing every count."""
    failures = []
    for size, count in measured.items():
        expected = golden.get(size)
        if expected is None:
            failures.append("%d B has no pair line in the golden file" % size)
            continue
        print("%6d B: %.2f instructions per malloc+free pair, golden %.2f" % (size, count, expected))
        if count > expected + GROWTH_ALLOWED:
            failures.append("%d B: malloc+free grew from %.2f to %.2f instructions per pair"
                            % (size, expected, count))
        elif count < expected - DROP_ALLOWED:
            failures.append("%d B: malloc+free dropped from %.2f to %.2f instructions per pair: "
                            "update the golden file so that it keeps protecting the gain"
                            % (size, expected, count))
    return failures


def shape_failures(golden, measured, so):
    """Prints the unified diff of the golden shape and this build's; one message if they differ."""
    diff = list(difflib.unified_diff(golden, measured, "golden", "this build", lineterm=""))
    if not diff:
        return []
    print("\n".join(diff))
    return ["the shape of malloc/free changed (diff above; this .so was built by %s)"
            % compiler(so)]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("so", help="libhakmem.so")
    parser.add_argument("loop", help="bench/fastpath_loop")
    parser.add_argument("golden", help="the golden file (relative to the workspace with --update)")
    parser.add_argument("--update", action="store_true", help="rewrite the golden file")
    parser.add_argument("--skip", action="append", default=[], metavar="REASON",
                        help="this build is not the golden file's (bazel's select() passes it)")
    args = parser.parse_args()
    if args.skip:
        reasons = "; ".join(args.skip)
        if args.update:
            sys.exit("fastpath_golden: --update needs --config=release (gcc, x86_64, not secure); "
                     "this is: " + reasons)
        print("SKIPPED (%s): the fast path golden file holds for the release gcc x86_64 "
              "non-secure build only" % reasons)
        return 0
    tools = ["valgrind", "callgrind_annotate", "objdump", "readelf"]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        sys.exit("FAIL: %s missing: valgrind and binutils are required in the release build "
                 "(./bazelw installs them)" % ", ".join(missing))
    so, loop = os.path.abspath(args.so), os.path.abspath(args.loop)
    path_lines, listing_lines = shape(so)
    pairs = pair_counts(so, loop)
    if args.update:
        golden = os.path.join(os.environ.get("BUILD_WORKSPACE_DIRECTORY", ""), args.golden)
        with open(golden, "w") as f:
            f.write(render(so, pairs, path_lines, listing_lines))
        print("updated %s" % golden)
        return 0
    with open(args.golden) as f:
        golden_pairs, golden_lines = parse(f.read())
    failures = (shape_failures(golden_lines, path_lines + listing_lines, so)
                + pair_failures(golden_pairs, pairs))
    for failure in failures:
        print("FAIL: " + failure)
    if failures:
        print("If this is meant, update the golden file on purpose: " + UPDATE)
        return 1
    print("PASS: malloc and free have the golden shape and cost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
