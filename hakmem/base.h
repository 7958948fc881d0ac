// base: compiler attributes, assert tiers and fatal error reporting shared by every box.
//
// Owns: nothing at run time. May use: libc headers only. Every other box includes this first.
//
// Assert tiers (HAKMEM_DEBUG: 0 in release, 1 by default without NDEBUG, 2 in the debug config):
//   HAK_ASSERT(c)           level >= 1: cheap invariants.
//   HAK_ASSERT_EXPENSIVE(c) level >= 2: walks of whole lists or slabs.
//   HAK_CHECK(c, ...)       always on: heap corruption that costs nothing to see on a slow path.
// Compiled-out asserts still type-check their expression (sizeof) but never evaluate it.
#ifndef HAKMEM_BASE_H
#define HAKMEM_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define HAK_EXTERN_C_BEGIN extern "C" {
#define HAK_EXTERN_C_END }
#else
#define HAK_EXTERN_C_BEGIN
#define HAK_EXTERN_C_END
#endif

#ifndef HAKMEM_DEBUG
#ifdef NDEBUG
#define HAKMEM_DEBUG 0
#else
#define HAKMEM_DEBUG 1
#endif
#endif

#ifdef __cplusplus
#define HAK_STATIC_ASSERT(c, msg) static_assert(c, msg)
#else
#define HAK_STATIC_ASSERT(c, msg) _Static_assert(c, msg)
#endif

// Secure builds (--config=secure): encoded free-list links checked on every pop, a double free
// always detected, freshly carved blocks in random order, a guard page in every slab.
#ifndef HAKMEM_SECURE
#define HAKMEM_SECURE 0
#endif

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_COLD __attribute__((cold))
#define HAK_INLINE static inline __attribute__((always_inline))
#define HAK_NORETURN __attribute__((noreturn))
// Compiler-only barrier (no instruction). Used once, in the free fast path: without it gcc
// hoists the load of slab->used above the list push and then cannot fuse the decrement and the
// zero test into one `subl $1, mem; je` (two instructions more per free).
#define HAK_COMPILER_BARRIER() __asm__ volatile("" ::: "memory")
// AddressSanitizer builds (gcc defines __SANITIZE_ADDRESS__, clang has the feature test): the
// allocator marks which bytes of its memory the program may touch, so ASan reports a
// use-after-free or an overflow into hakmem memory (asan config, fuzzers). No-ops otherwise.
#if defined(__SANITIZE_ADDRESS__)
#define HAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAK_ASAN 1
#endif
#endif
#ifndef HAK_ASAN
#define HAK_ASAN 0
#endif
// ThreadSanitizer builds (tsan config), detected the same way.
#if defined(__SANITIZE_THREAD__)
#define HAK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAK_TSAN 1
#endif
#endif
#ifndef HAK_TSAN
#define HAK_TSAN 0
#endif
#if HAK_ASAN
#include <sanitizer/asan_interface.h>
#define HAK_POISON(p, n) __asan_poison_memory_region((p), (n))
#define HAK_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define HAK_POISON(p, n) ((void)(p), (void)(n))
#define HAK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HAK_TLS __thread __attribute__((tls_model("initial-exec")))
#define HAK_CACHE_LINE 64

HAK_EXTERN_C_BEGIN

#define HAK_KiB ((size_t)1 << 10)
#define HAK_MiB ((size_t)1 << 20)

// Reports a broken heap or misuse on one line of stderr and aborts. Never allocates.
HAK_NORETURN HAK_COLD void hak_fatal(const char* what, const void* address, const char* detail);
// Set by hak_fatal before it aborts: the crash handler then knows the reason is printed already.
extern volatile int hak_fatal_reported;
// One warning line on stderr (configuration problems). Never allocates.
HAK_COLD void hak_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

#define HAK_CHECK(cond, what, address, detail)       \
  do {                                               \
    if (HAK_UNLIKELY(!(cond))) hak_fatal((what), (address), (detail)); \
  } while (0)

#define HAK_ASSERT_TIER(level, cond)                                     \
  do {                                                                   \
    if (HAKMEM_DEBUG >= (level)) {                                       \
      if (HAK_UNLIKELY(!(cond))) hak_fatal("assertion failed", NULL, #cond); \
    } else {                                                             \
      (void)sizeof(cond);                                                \
    }                                                                    \
  } while (0)

#define HAK_ASSERT(cond) HAK_ASSERT_TIER(1, cond)
#define HAK_ASSERT_EXPENSIVE(cond) HAK_ASSERT_TIER(2, cond)

HAK_INLINE uintptr_t hak_align_up(uintptr_t x, uintptr_t alignment) {
  return (x + alignment - 1) & ~(alignment - 1);
}

HAK_INLINE int hak_is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// The calling thread's unique id while it lives: its thread pointer (one instruction to read).
HAK_INLINE uintptr_t hak_thread_id(void) { return (uintptr_t)__builtin_thread_pointer(); }

HAK_EXTERN_C_END

#endif  // HAKMEM_BASE_H
