#!/usr/bin/env python3
"""Combines the per-test LCOV reports listed in --reports_file into one LCOV file (--output_file)."""
import argparse, os, sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from lcov_merger import parse_lcov, write_lcov  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports_file", required=True)
    parser.add_argument("--output_file", required=True)
    args, _ = parser.parse_known_args(argv)
    records = {}
    with open(args.reports_file) as listing:
        for report in (l.strip() for l in listing):
            if report and os.path.exists(report):
                with open(report, errors="replace") as f:
                    parse_lcov(f.read(), records)
    with open(args.output_file, "w") as out:
        write_lcov(records, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
