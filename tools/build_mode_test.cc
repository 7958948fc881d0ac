// Checks that the build config named on the command line is the one the binary was built and run
// with. Each check observes the compiler or the running process, never the flag list itself.
#include <elf.h>
#include <gtest/gtest.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#ifndef __has_feature
#define __has_feature(x) 0
#endif

#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define HAKMEM_HAS_ASAN 1
#else
#define HAKMEM_HAS_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define HAKMEM_HAS_TSAN 1
#else
#define HAKMEM_HAS_TSAN 0
#endif

extern "C" void __tsan_acquire(void* addr) __attribute__((weak));

namespace {

uint16_t ElfMachineOfThisProcess() {
  // Under qemu-user, /proc/self/exe names the guest binary, not qemu.
  std::FILE* f = std::fopen("/proc/self/exe", "rb");
  if (f == nullptr) return 0;
  Elf64_Ehdr header;
  size_t got = std::fread(&header, 1, sizeof(header), f);
  std::fclose(f);
  if (got != sizeof(header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) return 0;
  return header.e_machine;
}

[[maybe_unused]] std::string ProcessCommandName() {
  std::ifstream comm("/proc/self/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

[[maybe_unused]] int OverflowSigned(volatile int x) { return x + 1; }

}  // namespace

TEST(BuildMode, ArchitectureMatchesConfig) {
#if defined(HAKMEM_EXPECT_AARCH64_UNDER_QEMU)
#if !defined(__aarch64__)
  FAIL() << "aarch64 config compiled for another architecture";
#endif
  EXPECT_EQ(ElfMachineOfThisProcess(), EM_AARCH64);
  // The kernel sees the emulator; the guest sees its own binary. Both together prove emulation.
  EXPECT_EQ(ProcessCommandName().rfind("qemu-aarch64", 0), 0u) << ProcessCommandName();
#elif defined(__x86_64__)
  EXPECT_EQ(ElfMachineOfThisProcess(), EM_X86_64);
#elif defined(__aarch64__)
  EXPECT_EQ(ElfMachineOfThisProcess(), EM_AARCH64);
#endif
}

TEST(BuildMode, AddressSanitizerMatchesConfig) {
#if defined(HAKMEM_EXPECT_ASAN)
  ASSERT_TRUE(HAKMEM_HAS_ASAN);
  EXPECT_DEATH(
      {
        volatile char* p = new char[16];
        p[16] = 1;
        delete[] p;
      },
      "AddressSanitizer: heap-buffer-overflow");
#else
  EXPECT_FALSE(HAKMEM_HAS_ASAN);
#endif
}

TEST(BuildMode, ThreadSanitizerMatchesConfig) {
#if defined(HAKMEM_EXPECT_TSAN)
  ASSERT_TRUE(HAKMEM_HAS_TSAN);
  EXPECT_NE(&__tsan_acquire, nullptr) << "TSan runtime not linked";
#else
  EXPECT_FALSE(HAKMEM_HAS_TSAN);
  EXPECT_EQ(&__tsan_acquire, nullptr);
#endif
}

TEST(BuildMode, UndefinedBehaviourSanitizerFailsTheProcess) {
#if defined(HAKMEM_EXPECT_UBSAN)
  EXPECT_DEATH(OverflowSigned(INT_MAX), "runtime error: signed integer overflow");
#else
  GTEST_SKIP() << "not an ubsan build";
#endif
}

TEST(BuildMode, OptimisationMatchesConfig) {
#if defined(HAKMEM_EXPECT_RELEASE)
#if !defined(NDEBUG) || !defined(__OPTIMIZE__)
  FAIL() << "release config must define NDEBUG and optimise";
#endif
#elif defined(HAKMEM_EXPECT_DEBUG)
#if defined(NDEBUG) || !defined(HAKMEM_DEBUG) || HAKMEM_DEBUG < 2
  FAIL() << "debug config must keep asserts and set HAKMEM_DEBUG=2";
#endif
#endif
  SUCCEED();
}

TEST(BuildMode, CompilerMatchesConfig) {
#if defined(HAKMEM_EXPECT_CLANG) && !defined(__clang__)
  FAIL() << "clang config compiled with another compiler";
#elif !defined(HAKMEM_EXPECT_CLANG) && defined(__clang__)
  FAIL() << "gcc is the default compiler, but this is clang";
#endif
  SUCCEED();
}
