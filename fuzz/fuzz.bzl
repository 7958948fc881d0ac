"""hakmem_fuzzer: one libFuzzer driver, built and tested in every configuration.

hakmem_fuzzer(name = "x", srcs = [...], deps = [...], corpus = "corpus/x") makes

  x_fuzzer  cc_binary. Under --config=fuzz (--define=fuzzing=libfuzzer, clang, ASan) it links
            -fsanitize=fuzzer: a real libFuzzer binary. In every other configuration it links
            //fuzz:replay_main instead, which runs LLVMFuzzerTestOneInput over the files and
            directories given as arguments (flags starting with '-' are ignored).
  x         sh_test (fuzz/run_fuzzer.sh). Under --config=fuzz it fuzzes a scratch copy of the seed
            corpus for max_total_time seconds within -rss_limit_mb/-malloc_limit_mb, with `dict`,
            leaving reproducers in bazel-testlogs/<pkg>/x/test.outputs/, then replays the seeds.
            Elsewhere (gcc, clang, asan, tsan, ubsan, debug, release, aarch64 under qemu) it
            replays the seed corpus once: a regression test. Results are cached like any test's;
            pass --nocache_test_results to fuzz again.

corpus: a directory of the calling package (every file under it is a seed) or a list of labels.
dict: a libFuzzer dictionary file (fuzz config only).
max_total_time: seconds of fuzzing per test run under --config=fuzz.
tags: given to both targets. size: of the test ("small": replays take a second, fuzzing
max_total_time seconds, well inside small's 60 s timeout).
rss_limit_mb, malloc_limit_mb: libFuzzer's memory bounds (RSS counts hakmem's mappings too).
fuzzer_args: extra libFuzzer flags for the fuzz run and the replay of the seeds under libFuzzer.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")
load("//hakmem:copts.bzl", "HAKMEM_CC_COPTS")

_FUZZING = "//:fuzzing"
_AARCH64 = "//:aarch64"
_QEMU_RUN = "//third_party/aarch64:qemu_run"

def hakmem_fuzzer(
        name,
        srcs,
        deps,
        corpus,
        dict = None,
        max_total_time = 20,
        tags = [],
        size = "small",
        rss_limit_mb = 2560,
        malloc_limit_mb = 1024,
        fuzzer_args = []):
    binary = name + "_fuzzer"
    cc_binary(
        name = binary,
        testonly = True,
        srcs = srcs,
        copts = HAKMEM_CC_COPTS,
        linkopts = select({
            _FUZZING: ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            _FUZZING: [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        tags = tags,
    )

    seeds = native.glob([corpus + "/**"]) if type(corpus) == type("") else corpus
    if not seeds:
        fail("hakmem_fuzzer %s: the corpus %s holds no files" % (name, corpus))
    native.filegroup(
        name = name + "_corpus",
        testonly = True,
        srcs = seeds,
    )

    dict_data = [dict] if dict else []
    dict_args = ["--dict=$(rootpath %s)" % dict] if dict else []
    native.sh_test(
        name = name,
        size = size,
        srcs = ["//fuzz:run_fuzzer.sh"],
        args = [
            "--fuzzer=$(rootpath :%s)" % binary,
            "--max_total_time=%d" % max_total_time,
            "--rss_limit_mb=%d" % rss_limit_mb,
            "--malloc_limit_mb=%d" % malloc_limit_mb,
        ] + ["--fuzzer_arg=" + a for a in fuzzer_args] + dict_args + select({
            _FUZZING: ["--mode=fuzz"],
            "//conditions:default": ["--mode=replay"],
        }) + select({
            _AARCH64: ["--runner=$(rootpath %s)" % _QEMU_RUN],
            "//conditions:default": [],
        }) + [
            "--",
            "$(locations :%s_corpus)" % name,
        ],
        data = [
            ":" + binary,
            ":%s_corpus" % name,
        ] + dict_data + select({
            _AARCH64: [_QEMU_RUN],
            "//conditions:default": [],
        }),
        tags = tags,
    )
