"""Compiler flags for every HAKMEM target, in one place.

HAKMEM_C_COPTS: allocator code (C11 + GNU extensions such as mremap and MAP_* flags).
HAKMEM_CC_COPTS: tests, fuzzers, stress and benchmark drivers (C++17).
Warnings are errors in project code; external code (gtest) is compiled with its own flags.
"""

_WARNINGS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wpointer-arith",
]

HAKMEM_C_COPTS = _WARNINGS + [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    # Only the names in hakmem/shim/hakmem.map leave libhakmem.so; internal calls skip the PLT.
    "-fvisibility=hidden",
]

HAKMEM_CC_COPTS = _WARNINGS + [
    "-D_GNU_SOURCE",
    # gtest's macros compare signed expectations with unsigned results all the time.
    "-Wno-sign-compare",
]

# Tests that run this machine's programs (x86-64, uninstrumented) with libhakmem.so preloaded:
# not under the aarch64 cross config nor with a sanitizer runtime inside the library.
HOST_ONLY = select({
    "//:aarch64": ["@platforms//:incompatible"],
    "//:asan": ["@platforms//:incompatible"],
    "//:tsan": ["@platforms//:incompatible"],
    "//:ubsan": ["@platforms//:incompatible"],
    "//conditions:default": [],
})
