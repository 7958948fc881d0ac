#!/usr/bin/env python3
"""Checks that the deps of every C/C++ target are exactly the targets whose headers it includes.

Why: a header reached through some other dep's deps builds today and breaks when that dep changes
its own deps; a dep that nothing includes keeps a layering edge that the code no longer needs.
hakmem/BUILD describes the allocator's boxes bottom up and each box may see only what it
depends on, so the BUILD files must say exactly what the sources include.

Rules, for every cc_library, cc_binary and cc_test of the workspace (third_party/, bazel-* and
hidden directories are skipped; labels of external repositories, @..., are ignored):
  1. A header belongs to the one target listing it in hdrs (public) or srcs (private); a header
     listed by two targets is an error.
  2. Every `#include "..."` in a target's srcs and hdrs that names a file of the workspace (looked
     up next to the including file, then from the workspace root: hakmem/pool/mid.h) must belong
     to the target itself or to one of its deps, and must be a public header unless it is the
     target's own. Angle includes (system headers, gtest) are not checked.
  3. Every dep that has public headers must have at least one of them included by the target.
     A dep there only for linking (an alwayslink constructor, say) carries a marker after it,
     on its line of the BUILD file:
         "//hakmem/ace:engine",  # link-only: <reason>
         deps = [":engine"],  # link-only: <reason>
     The marker holds for every target that the BUILD statement around it makes (all the targets
     of a list comprehension, all the rules of a macro call).
     Deps without public headers (such as //fuzz:replay_main) can only be there for linking and
     need no marker.

BUILD and .bzl files are evaluated as Python: load() evaluates project .bzl files (external ones
provide nothing), glob() lists the package's files, select() yields every branch at once (lists
joined, dicts merged), and any other name is a stub that records a rule when called with name=.

Usage:
  check_deps.py [ROOT]     check the workspace at ROOT (default: the workspace holding this
                           script, symlinks resolved, so it works from Bazel's runfiles)
  check_deps.py --self-test  check a generated tree with planted errors: they must all be found
Prints one line per problem and exits 1, or prints a summary line and exits 0.
"""

import argparse
import ast
import builtins
import glob
import os
import re
import sys
import tempfile
import types
from dataclasses import dataclass

CC_KINDS = ("cc_library", "cc_binary", "cc_test")
BUILD_NAMES = ("BUILD.bazel", "BUILD")
HEADER_EXTENSIONS = (".h", ".hh", ".hpp", ".hxx", ".inc", ".ipp")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)
LINK_ONLY = re.compile(r'"([^"]+)"[\s,\])]*#\s*link-only\b')


def resolve_label(label, pkg):
    """The canonical //pkg:name form of label as written in package pkg; None if external."""
    if label.startswith("@"):
        return None
    if not label.startswith("//"):
        return f"//{pkg}:{label.removeprefix(':')}"
    label_pkg, _, name = label[2:].partition(":")
    return f"//{label_pkg}:{name or label_pkg.rsplit('/', 1)[-1]}"


def label_path(label):
    """The workspace-relative path of the file that a canonical label names."""
    label_pkg, _, name = label[2:].partition(":")
    return f"{label_pkg}/{name}" if label_pkg else name


def find_build_file(directory):
    return next((os.path.join(directory, n) for n in BUILD_NAMES
                 if os.path.isfile(os.path.join(directory, n))), None)


def find_packages(root):
    """Every package of the workspace, as a path relative to root ("" for the root package)."""
    for dirpath, dirnames, _ in os.walk(root):
        pkg = os.path.relpath(dirpath, root).replace(os.sep, "/").removeprefix(".")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "bazel-"))
                             and not (pkg == "" and d == "third_party"))
        if find_build_file(dirpath):
            yield pkg


@dataclass
class Target:
    label: str
    files: list  # workspace-relative paths of srcs, hdrs and textual_hdrs that exist
    public: set  # the files of hdrs and textual_hdrs
    private: set  # the headers of srcs
    deps: list  # canonical labels, external ones left out
    link_only: set  # deps marked '# link-only' on their line of the BUILD file


class Stub:
    """Any name the evaluator does not define: called with name=, it records a rule."""

    def __init__(self, package, kind):
        self.package, self.kind = package, kind

    def __call__(self, *args, **kwargs):
        if "name" in kwargs:
            self.package.record(self.kind, kwargs)

    def __getattr__(self, attr):  # native.glob, native.sh_test, ...
        return self.package.functions().get(attr) or Stub(self.package, attr)


class Package:
    """Evaluates one BUILD file (and the .bzl files it loads) into its targets."""

    def __init__(self, root, pkg):
        self.root, self.pkg = root, pkg
        self.build_file = find_build_file(os.path.join(root, pkg))
        with open(self.build_file) as f:
            self.lines = f.read().splitlines()
        tree = ast.parse("\n".join(self.lines), self.build_file)
        self.statements = [range(s.lineno, s.end_lineno + 1) for s in tree.body]
        self.targets = []

    def evaluate(self):
        self.exec_file(self.build_file, self.pkg)
        return self.targets

    def exec_file(self, path, pkg):
        """Runs a BUILD or .bzl file of package pkg and returns its globals."""
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        env = {name: Stub(self, name) for name in names_used(code) if not hasattr(builtins, name)}
        env.update(self.functions())
        env["load"] = lambda label, *symbols, **aliases: self.load(env, pkg, label, symbols, aliases)
        exec(code, env)
        return env

    def functions(self):
        return {"glob": self.glob, "select": select, "fail": fail,
                "package_name": lambda: self.pkg}

    def load(self, env, pkg, label, symbols, aliases):
        label = resolve_label(label, pkg)
        if label is None:
            return  # rules from external repositories stay recording stubs
        loaded = self.exec_file(os.path.join(self.root, label_path(label)), label[2:].split(":")[0])
        env.update({s: loaded[s] for s in symbols})
        env.update({alias: loaded[s] for alias, s in aliases.items()})

    def glob(self, include, exclude=(), **_):
        base = os.path.join(self.root, self.pkg)

        def matches(patterns):
            return {p for pattern in patterns for p in glob.glob(pattern, root_dir=base, recursive=True)}

        return sorted(p for p in matches(include) - matches(exclude)
                      if os.path.isfile(os.path.join(base, p)) and not self.in_subpackage(p))

    def in_subpackage(self, path):
        parts = path.split("/")[:-1]
        return any(find_build_file(os.path.join(self.root, self.pkg, *parts[:i]))
                   for i in range(1, len(parts) + 1))

    def record(self, kind, attrs):
        if kind not in CC_KINDS:
            return
        label = f"//{self.pkg}:{attrs['name']}"
        paths = {a: self.existing_files(attrs.get(a, [])) for a in ("srcs", "hdrs", "textual_hdrs")}
        deps = (resolve_label(d, self.pkg) for d in attrs.get("deps", []))
        self.targets.append(Target(
            label=label,
            files=list(dict.fromkeys(paths["srcs"] + paths["hdrs"] + paths["textual_hdrs"])),
            public=set(paths["hdrs"] + paths["textual_hdrs"]),
            private={p for p in paths["srcs"] if p.endswith(HEADER_EXTENSIONS)},
            deps=list(dict.fromkeys(d for d in deps if d)),
            link_only=self.link_only_deps(),
        ))

    def existing_files(self, labels):
        paths = (label_path(resolve_label(label, self.pkg)) for label in labels)
        return [p for p in paths if os.path.isfile(os.path.join(self.root, p))]

    def link_only_deps(self):
        """The deps marked link-only inside the BUILD statement that is making a rule now."""
        frame = sys._getframe()
        while frame and frame.f_code.co_filename != self.build_file:
            frame = frame.f_back
        statement = next((s for s in self.statements if frame and frame.f_lineno in s), range(0))
        return {resolve_label(m, self.pkg) for n in statement
                for m in LINK_ONLY.findall(self.lines[n - 1])}


def names_used(code):
    """Every name that code and the functions defined in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= names_used(const)
    return names


def select(branches, no_match_error=""):
    values = list(branches.values())
    if all(isinstance(v, list) for v in values):
        return [item for v in values for item in v]
    if all(isinstance(v, dict) for v in values):
        return {k: v for d in values for k, v in d.items()}
    return values[0]


def fail(message, *_):
    raise RuntimeError(message)


def project_includes(root, path):
    """The workspace files that path includes with quotes, as workspace-relative paths."""
    with open(os.path.join(root, path), errors="replace") as f:
        text = f.read()
    for include in INCLUDE.findall(text):
        for base in (os.path.dirname(path), ""):
            candidate = os.path.normpath(os.path.join(base, include))
            if not candidate.startswith("..") and os.path.isfile(os.path.join(root, candidate)):
                yield candidate.replace(os.sep, "/")
                break


def header_owners(targets):
    """Maps every header to (owning target, public?); reports headers listed by two targets."""
    owners, problems = {}, []
    for t in targets:
        for header in sorted(t.public | t.private):
            if header in owners:
                problems.append(f"{header} is listed by both {owners[header][0].label} and {t.label}")
            else:
                owners[header] = (t, header in t.public)
    return owners, problems


def check_target(root, t, owners, by_label):
    """The problems of target t and the number of project includes checked."""
    problems, included, count = [], set(), 0
    for path in t.files:
        for header in project_includes(root, path):
            count += 1
            owner, public = owners.get(header, (None, False))
            if owner is None:
                problems.append(f"{path} includes {header}, which no target lists in hdrs or srcs")
            elif owner is t:
                continue
            elif owner.label not in t.deps:
                problems.append(f"{path} includes {header} ({owner.label}) but {t.label} does not depend on it")
            else:
                included.add(owner.label)
                if not public:
                    problems.append(f"{path} includes {header}, a private header (srcs) of {owner.label}")
    for dep in t.deps:
        if dep in by_label and by_label[dep].public and dep not in included | t.link_only:
            problems.append(f"{t.label} depends on {dep} but includes none of its headers"
                            " (a dep needed only for linking: mark it '# link-only: <reason>')")
    return problems, count


def check(root):
    """All problems of the workspace at root, and the numbers of targets and includes checked."""
    targets = [t for pkg in find_packages(root) for t in Package(root, pkg).evaluate()]
    owners, problems = header_owners(targets)
    by_label = {t.label: t for t in targets}
    includes = 0
    for t in targets:
        target_problems, count = check_target(root, t, owners, by_label)
        problems += target_problems
        includes += count
    return problems, len(targets), includes


SELF_TEST_TREE = {
    "WORKSPACE": "",
    "lib/defs.bzl": """
def app(name, deps):
    native.cc_binary(name = name, srcs = [name + ".c"], deps = deps + ["//lib:runtime"])
""",
    "lib/BUILD": """
load("@rules_cc//cc:defs.bzl", "cc_library")

cc_library(name = "lib", srcs = glob(["*.c"]) + ["internal.h"], hdrs = ["lib.h"])
cc_library(name = "util", hdrs = ["util.h"], deps = [":lib"])
cc_library(name = "runtime", srcs = ["runtime.c"], alwayslink = True)
cc_library(name = "hooks", hdrs = ["hooks.h", "lib.h"])
""",
    "lib/lib.c": '#include "lib/lib.h"\n#include "internal.h"\n',
    "lib/runtime.c": "",
    "lib/lib.h": "",
    "lib/internal.h": "",
    "lib/util.h": '#include "lib/lib.h"\n',
    "lib/hooks.h": "",
    "app/BUILD": """
load("//lib:defs.bzl", "app")

app(name = "good", deps = ["//lib", "//lib:util"])

[cc_binary(
    name = name,
    srcs = [name + ".c"],
    deps = [
        "//lib:hooks",  # link-only: planted
        "@googletest//:gtest_main",
    ],
) for name in ["linked"]]

cc_binary(name = "plugin", srcs = ["linked.c"], deps = ["//lib:hooks"])  # link-only: planted

cc_test(
    name = "bad",
    srcs = ["bad.c", "bad.h"],
    deps = select({"//:x": ["//lib:util"], "//conditions:default": ["//lib:hooks"]}),
)
""",
    "app/good.c": '#include "lib/util.h"\n#include "lib/lib.h"\n#include "lib/internal.h"\n',
    "app/linked.c": "#include <stdio.h>\n",
    "app/bad.c": '#include "app/bad.h"\n#include "lib/lib.h"\n#include "app/orphan.h"\n'
                 '#include "not_in_tree.h"\n// #include "lib/hooks.h"\n',
    "app/bad.h": "",
    "app/orphan.h": "",
}

SELF_TEST_EXPECTED = [
    "lib/lib.h is listed by both //lib:lib and //lib:hooks",
    "app/good.c includes lib/internal.h, a private header (srcs) of //lib:lib",
    "app/bad.c includes lib/lib.h (//lib:lib) but //app:bad does not depend on it",
    "app/bad.c includes app/orphan.h, which no target lists in hdrs or srcs",
    "//app:bad depends on //lib:util but includes none of its headers"
    " (a dep needed only for linking: mark it '# link-only: <reason>')",
    "//app:bad depends on //lib:hooks but includes none of its headers"
    " (a dep needed only for linking: mark it '# link-only: <reason>')",
]


def self_test():
    """Checks SELF_TEST_TREE: exactly the planted problems must be reported."""
    with tempfile.TemporaryDirectory() as root:
        for path, text in SELF_TEST_TREE.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        problems, targets, includes = check(root)
    got = (problems, targets, includes)
    want = (SELF_TEST_EXPECTED, 8, 9)
    if got == want:
        print(f"self-test passed: {len(problems)} planted problems found")
        return 0
    print(f"self-test FAILED\n got: {got}\nwant: {want}")
    return 1


def workspace_of(path):
    directory = os.path.dirname(os.path.realpath(path))
    while not os.path.isfile(os.path.join(directory, "WORKSPACE")):
        if directory == os.path.dirname(directory):
            sys.exit(f"check_deps: no WORKSPACE above {os.path.realpath(path)}")
        directory = os.path.dirname(directory)
    return directory


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", help="workspace root (default: this script's)")
    parser.add_argument("--self-test", action="store_true", help="check a tree with planted errors")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    root = args.root or workspace_of(__file__)
    problems, targets, includes = check(root)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"check_deps: {targets} targets, {includes} includes checked, deps match includes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
