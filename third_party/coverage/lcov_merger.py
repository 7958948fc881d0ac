#!/usr/bin/env python3
"""Merges one test's coverage data into a single LCOV file.

Understands what Bazel's collect_cc_coverage.sh leaves in --coverage_dir: LCOV `.dat` files (clang /
llvm-cov path) and gcc >= 9 `*.gcov.json.gz` files. Sources matching a --filter_sources regex are
dropped; when --source_file_manifest lists C/C++ sources, only those are kept.
"""
import argparse, gzip, json, os, re, sys


def parse_lcov(text, records):
    current = None
    for line in text.splitlines():
        if line.startswith("SF:"):
            current = records.setdefault(line[3:], {"lines": {}, "functions": {}})
        elif current is None:
            continue
        elif line.startswith("DA:"):
            number, count = line[3:].split(",")[:2]
            current["lines"][int(number)] = current["lines"].get(int(number), 0) + int(count)
        elif line.startswith("FN:"):
            start, name = line[3:].split(",", 1)
            current["functions"].setdefault(name, [int(start), 0])
        elif line.startswith("FNDA:"):
            count, name = line[5:].split(",", 1)
            current["functions"].setdefault(name, [0, 0])[1] += int(count)
        elif line == "end_of_record":
            current = None


def parse_gcov_json(data, records):
    for source in data.get("files", []):
        record = records.setdefault(source["file"], {"lines": {}, "functions": {}})
        for line in source.get("lines", []):
            number = line["line_number"]
            record["lines"][number] = record["lines"].get(number, 0) + line["count"]
        for function in source.get("functions", []):
            entry = record["functions"].setdefault(function["name"], [function["start_line"], 0])
            entry[1] += function["execution_count"]


def write_lcov(records, out):
    for path in sorted(records):
        record = records[path]
        out.write("SF:%s\n" % path)
        for name, (start, count) in sorted(record["functions"].items()):
            out.write("FN:%d,%s\n" % (start, name))
        for name, (start, count) in sorted(record["functions"].items()):
            out.write("FNDA:%d,%s\n" % (count, name))
        out.write("FNF:%d\nFNH:%d\n" % (len(record["functions"]),
                                      sum(1 for _, c in record["functions"].values() if c)))
        for number, count in sorted(record["lines"].items()):
            out.write("DA:%d,%d\n" % (number, count))
        out.write("LH:%d\nLF:%d\nend_of_record\n" % (
            sum(1 for c in record["lines"].values() if c), len(record["lines"])))


def load_manifest(path):
    if not path or not os.path.exists(path):
        return set()
    with open(path) as f:
        return {l.strip() for l in f if l.strip().endswith((".c", ".cc", ".h", ".cpp", ".hpp"))}


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--coverage_dir", required=True)
    parser.add_argument("--output_file", required=True)
    parser.add_argument("--filter_sources", action="append", default=[])
    parser.add_argument("--source_file_manifest")
    parser.add_argument("--sources_to_replace_file")
    args, _ = parser.parse_known_args(argv)

    records = {}
    for root, _, files in os.walk(args.coverage_dir):
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".dat"):
                with open(path, errors="replace") as f:
                    parse_lcov(f.read(), records)
            elif name.endswith(".gcov.json.gz"):
                with gzip.open(path, "rt") as f:
                    parse_gcov_json(json.load(f), records)

    filters = [re.compile(p) for p in args.filter_sources]
    manifest = load_manifest(args.source_file_manifest)
    kept = {}
    for path, record in records.items():
        if any(f.match(path) for f in filters):
            continue
        if manifest and not any(path.endswith(m) or m.endswith(path) for m in manifest):
            continue
        kept[path] = record
    with open(args.output_file, "w") as out:
        write_lcov(kept, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
