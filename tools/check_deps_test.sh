#!/usr/bin/env bash
# deps_test: check_deps.py must find the problems planted in its self-test tree, then the real
# source tree must have none. $1: tools/check_deps.py in the runfiles. The checker resolves that
# symlink to find the workspace it checks: the test's inputs cannot hold every BUILD file and
# source of the tree, so it reads them in place.
set -euo pipefail
python3 "$1" --self-test
python3 "$1"
