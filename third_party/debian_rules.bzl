"""Repository rules that expose Debian-packaged Bazel rules and libraries to this workspace.

Everything here reads files that `./bazelw` installed from Debian; nothing is downloaded.
"""

# Debian's bazel-rules-cc (0.0.4) loads `use_cpp_toolchain`, which Bazel 4.2.3 lacks. These two
# files get patched copies; every other file is symlinked unchanged.
_RULES_CC_PATCHED_FILES = [
    "cc/private/rules_impl/cc_flags_supplier.bzl",
    "cc/private/rules_impl/compiler_flag.bzl",
]

_OLD_LOAD = 'load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain", "use_cpp_toolchain")'
_NEW_LOAD = 'load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")'
_OLD_CALL = "use_cpp_toolchain()"
_NEW_CALL = '["@bazel_tools//tools/cpp:toolchain_type"]'

def _patch_rules_cc_file(rel, text):
    if _OLD_LOAD not in text or _OLD_CALL not in text:
        fail("debian_rules_cc: %s no longer matches the expected text; update the patch" % rel)
    return text.replace(_OLD_LOAD, _NEW_LOAD).replace(_OLD_CALL, _NEW_CALL)

def _list_files(ctx, root):
    # Bazel 4.2.3's path object cannot tell files from directories, so ask find(1) once.
    result = ctx.execute(["find", str(root), "-type", "f", "-printf", "%P\\n"])
    if result.return_code != 0:
        fail("debian_rules_cc: cannot list %s: %s" % (root, result.stderr))
    return [rel for rel in result.stdout.splitlines() if rel]

def _debian_rules_cc_impl(ctx):
    root = ctx.path(ctx.attr.path)
    if not root.exists:
        fail("debian_rules_cc: %s is missing; run ./bazelw to install bazel-rules-cc" % ctx.attr.path)
    for rel in _list_files(ctx, root):
        if rel in ("WORKSPACE", "MODULE.bazel"):
            continue
        source = ctx.path("%s/%s" % (ctx.attr.path, rel))
        if rel in _RULES_CC_PATCHED_FILES:
            ctx.file(rel, _patch_rules_cc_file(rel, ctx.read(source)), executable = False)
        else:
            ctx.symlink(source, rel)
    ctx.file("WORKSPACE", 'workspace(name = "rules_cc")\n', executable = False)

debian_rules_cc = repository_rule(
    implementation = _debian_rules_cc_impl,
    attrs = {"path": attr.string(default = "/usr/share/bazel/rules/cc")},
    local = True,
)
