#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<driver>/seed_* (reproducible: fixed random seeds).

Run from anywhere: python3 fuzz/make_seeds.py. Only files named seed_* are rewritten; crash
reproducers and other inputs kept in the corpus directories are left alone. The encodings follow
the input formats documented in fuzz/alloc_driver.h, fuzz/alloc_mt_fuzzer.cc and
fuzz/config_fuzzer.cc.
"""

import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KIB = 1024
MIB = 1024 * KIB

# Op codes (op byte % 32), fuzz/alloc_driver.h.
MALLOC, CALLOC, REALLOC, FREE = 0, 8, 10, 14
ALIGNED_ALLOC, POSIX_MEMALIGN, USABLE, MEMALIGN, VALLOC = 21, 23, 25, 26, 27
REALLOCARRAY, EDGE, FREE_ALL, TRIM = 28, 29, 30, 31
# alloc_mt replaces 26-29.
SEND, RECEIVE = 26, 28


def u16(v):
    return struct.pack("<H", v)


def u24(v):
    return struct.pack("<I", v)[:3]


def size(n):
    """Encodes a size exactly (DecodeSize in fuzz/alloc_driver.cc)."""
    if n <= 1024:
        return bytes([0]) + u16(n)
    if n <= 64 * KIB:
        return bytes([3]) + u16(n - 1025)
    if n <= 4 * MIB:
        return bytes([5]) + u24(n - 64 * KIB - 1)
    assert n <= 16 * MIB
    return bytes([7]) + u24(n - 4 * MIB - 1)


def op(code, slot=0, *args):
    return bytes([code, slot]) + b"".join(args)


def malloc(slot, n):
    return op(MALLOC, slot, size(n))


def calloc(slot, n, elem_log2=0):
    return op(CALLOC, slot, size(n), bytes([elem_log2]))


def realloc(slot, n):
    return op(REALLOC, slot, size(n))


def free(slot):
    return op(FREE, slot)


def aligned_alloc(slot, align_log2, n):
    return op(ALIGNED_ALLOC, slot, bytes([align_log2]), size(n))


def posix_memalign(slot, align_log2, n):
    return op(POSIX_MEMALIGN, slot, bytes([align_log2 - 3]), size(n))


def random_ops(rng, count, slots, mt=False):
    """count ops of every kind; with mt, ops 26-29 are alloc_mt's send and receive."""
    out = b""
    for _ in range(count):
        code = rng.randrange(32)
        slot = rng.randrange(slots)
        kind = rng.random()
        if kind < 0.6:
            n = rng.randrange(0, 1025)
        elif kind < 0.9:
            n = rng.randrange(1025, 64 * KIB + 1)
        elif kind < 0.98:
            n = rng.randrange(64 * KIB + 1, 4 * MIB + 1)
        else:
            n = rng.randrange(4 * MIB + 1, 16 * MIB + 1)
        if code < 8:
            out += malloc(slot, n)
        elif code < 10:
            out += calloc(slot, n, rng.randrange(8))
        elif code < 14:
            out += realloc(slot, n)
        elif code < 21:
            out += free(slot)
        elif code < 23:
            out += aligned_alloc(slot, rng.randrange(22), n)
        elif code < 25:
            out += posix_memalign(slot, rng.randrange(3, 22), n)
        elif code == USABLE or code >= FREE_ALL:
            out += op(code, slot)
        elif mt and SEND <= code <= RECEIVE + 1:
            out += op(code, slot, bytes([rng.randrange(256)]))
        elif code == MEMALIGN:
            out += op(code, slot, u24(rng.randrange(1 << 24)), size(n))
        elif code == EDGE:
            out += op(code, slot, bytes([rng.randrange(4)]))
        else:  # valloc / pvalloc, reallocarray
            out += op(code, slot, size(n), bytes([rng.randrange(256)])) if code == REALLOCARRAY \
                else op(code, slot, bytes([rng.randrange(2)]), size(n))
    return out


def alloc_ops_seeds():
    seeds = {}
    tiny = b""
    for i, n in enumerate([0, 1, 8, 15, 16, 17, 100, 256, 512, 1000, 1024]):
        tiny += malloc(i, n)
    for i in range(0, 11, 2):
        tiny += free(i)
    for i in range(1, 11, 2):
        tiny += realloc(i, 3 * i + 1)
    tiny += op(USABLE, 3) + calloc(20, 1000, 3) + op(FREE_ALL)
    seeds["seed_tiny"] = tiny

    mid = b""
    for i, n in enumerate([1025, 1152, 2048, 4095, 4096, 30000, 65535, 65536]):
        mid += malloc(i, n)
    mid += realloc(0, 500) + realloc(1, 70000) + realloc(2, 1024) + realloc(7, 1025)
    mid += calloc(8, 40000, 2) + free(3) + malloc(3, 4096) + op(TRIM) + op(FREE_ALL)
    seeds["seed_mid"] = mid

    big = malloc(0, 70000) + malloc(1, 3 * MIB) + malloc(2, 10 * MIB) + free(1)
    big += calloc(3, 3 * MIB) + realloc(2, 16 * MIB) + realloc(2, 5 * MIB) + realloc(0, 2 * MIB)
    big += realloc(0, 60000) + free(2) + calloc(4, 5 * MIB, 7) + op(TRIM) + free(3)
    big += calloc(5, 200 * KIB) + op(FREE_ALL)
    seeds["seed_large_huge"] = big

    aligned = b""
    for i, a in enumerate([0, 3, 4, 6, 10, 12, 16, 20, 21]):
        aligned += aligned_alloc(i, a, [10, 100, 1000, 5000, 70000, 100, 1 * MIB, 50, 9 * MIB][i])
    for i, a in enumerate([3, 4, 5, 12, 13, 21]):
        aligned += posix_memalign(20 + i, a, [8, 64, 3000, 100, 200000, 4 * MIB][i])
    aligned += op(MEMALIGN, 30, u24(47), size(100)) + op(MEMALIGN, 31, u24(5000), size(70000))
    aligned += op(VALLOC, 32, b"\x00", size(10)) + op(VALLOC, 33, b"\x01", size(5000))
    aligned += op(VALLOC, 34, b"\x01", size(0)) + op(FREE_ALL)
    seeds["seed_aligned"] = aligned

    edges = malloc(0, 100) + malloc(1, 5000) + malloc(2, 100000)
    for which in range(4):
        edges += op(EDGE, which, bytes([which]))
    edges += op(REALLOCARRAY, 1, size(8000), b"\x03") + op(REALLOCARRAY, 2, size(64), b"\xff")
    edges += op(CALLOC, 5, size(10), b"\xff") + op(EDGE, 1, b"\x01") + op(EDGE, 2, b"\x02")
    edges += op(USABLE, 9) + op(FREE_ALL)
    seeds["seed_edges"] = edges

    rng = random.Random(1)
    for i in range(3):
        seeds["seed_random_%d" % i] = random_ops(rng, 200, 64)
    return seeds


def alloc_mt_seeds():
    seeds = {}
    rng = random.Random(2)

    def slice_for(thread, threads):
        ops = b""
        for i in range(12):
            ops += malloc(i, rng.choice([16, 100, 1024, 3000, 40000, 70000]))
        for i in range(12):
            ops += op(SEND, i, bytes([i]))
        for i in range(20):
            ops += op(RECEIVE, i, bytes([i & 1]))
        ops += realloc(1, 2000) + op(FREE_ALL)
        return ops

    for threads in (2, 3, 4):
        seeds["seed_handover_%d" % threads] = mt_input(
            [slice_for(t, threads) for t in range(threads)])
    for threads in (2, 3, 4):
        seeds["seed_random_%d" % threads] = mt_input(
            [random_ops(rng, 60, 32, mt=True) for _ in range(threads)])
    return seeds


def mt_input(slices):
    """Thread-count byte, then the slices padded to one length (the driver cuts equal slices)."""
    length = max(len(s) for s in slices)
    if any(length - len(s) == 1 for s in slices):
        length += 2  # a pad of 1 byte cannot be made of ops; 3 can
    body = b""
    for s in slices:
        pad = length - len(s)
        if pad % 2:
            s += op(EDGE, 0, b"\x03")  # 3 bytes: free(NULL)
            pad -= 3
        s += op(USABLE, 0) * (pad // 2)
        assert len(s) == length
        body += s
    return bytes([len(slices) - 2]) + body


def config_seeds():
    seeds = {}
    # Mode byte 1: environment lines.
    seeds["seed_env_valid"] = b"\x01" + b"\n".join([
        b"HAKMEM_PURGE_DELAY_MS=0",
        b"HAKMEM_SEGMENT_CACHE=1024",
        b"HAKMEM_MID_CACHE_KB=64",
        b"HAKMEM_HUGE_CACHE_MB=1048576",
        b"HAKMEM_HUGE_ROUND_PCT=100",
        b"HAKMEM_CHECK_FREES=0",
    ])
    seeds["seed_env_invalid"] = b"\x01" + b"\n".join([
        b"HAKMEM_PURGE_DELAY_MS=3600001",
        b"HAKMEM_SEGMENT_CACHE=-1",
        b"HAKMEM_MID_CACHE_KB=1k",
        b"HAKMEM_HUGE_CACHE_MB=",
        b"HAKMEM_HUGE_ROUND_PCT=99",
        b"HAKMEM_CHECK_FREES=9223372036854775808",
    ])
    seeds["seed_env_profile"] = b"\x01" + b"\n".join([
        b"HAKMEM_PROFILE=low-memory", b"HAKMEM_PURGE_DELAY_MS=7", b"HAKMEM_SEGMENT_CACHE=x"])
    # Old names of renamed variables, alone and beside their new names.
    seeds["seed_env_renamed"] = b"\x01" + b"\n".join([
        b"HAKMEM_MID_WMAX_PCT=150", b"HAKMEM_ACE_DYN1_PCT=x", b"HAKMEM_LARGE_WMAX_PCT=200",
        b"HAKMEM_LARGE_ROUND_PCT=300"])
    seeds["seed_env_bare_values"] = b"\x02" + b"\n".join(
        [b"250", b"8", b"+1", b" 5", b"400", b"1", b"0x10"])
    seeds["seed_env_duplicates"] = b"\x03" + b"\n".join([
        b"HAKMEM_SEGMENT_CACHE=3", b"HAKMEM_SEGMENT_CACHE=5", b"OTHER=1", b"=2", b"HAKMEM_=7"])
    # Mode byte 0: hak_config_parse_int(text, lo, hi).
    seeds["seed_parse_field_bounds"] = b"\x00\x00" + b"3600000"
    seeds["seed_parse_full_range"] = b"\x00\x01" + b"9223372036854775807"
    seeds["seed_parse_custom_bounds"] = (
        b"\x00\x02" + struct.pack("<qq", -100, 100) + b"-100")
    seeds["seed_parse_leading_zeros"] = b"\x00\x01" + b"-000000000000000000000042"
    return seeds


def write(driver, seeds):
    directory = os.path.join(HERE, "corpus", driver)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith("seed_"):
            os.remove(os.path.join(directory, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main():
    write("alloc_ops", alloc_ops_seeds())
    write("alloc_mt", alloc_mt_seeds())
    write("config", config_seeds())


if __name__ == "__main__":
    main()
