// The crash handler: the line it prints for hakmem and other memory, a real fault on a hakmem
// page, a program's own handler left alone, HAKMEM_CRASH_HANDLER=0, and no second line after
// hakmem's own heap-corruption abort.
#include "hakmem/crash.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "hakmem/config.h"
#include "hakmem/hakmem.h"
#include "hakmem/size_class.h"

namespace {

bool Contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

std::string Describe(int sig, const void* address, const void* pc) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  hak_crash_describe(fds[1], sig, address, pc);
  close(fds[1]);
  char buf[512];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  return std::string(buf, n > 0 ? (size_t)n : 0);
}

TEST(Crash, DescribesSlabMemoryWithItsClass) {
  void* p = hak_malloc(200);
  std::string line = Describe(SIGSEGV, p, nullptr);
  EXPECT_TRUE(std::regex_match(
      line, std::regex("hakmem: SIGSEGV \\(invalid memory access\\) at address 0x[0-9a-f]+; the "
                       "address is hakmem memory: a small-block slab of 208-byte blocks "
                       "\\(class " + std::to_string(hak_size_class(200)) + "\\)\n")))
      << line;
  hak_free(p);
}

TEST(Crash, DescribesOtherMemory) {
  int local = 0;
  std::string line = Describe(SIGBUS, &local, nullptr);
  EXPECT_TRUE(Contains(line, "SIGBUS (bus error)")) << line;
  EXPECT_TRUE(Contains(line, "the address is not hakmem memory\n")) << line;
  void* big = hak_malloc(1 << 20);  // a large-pool span
  line = Describe(SIGSEGV, big, nullptr);
  EXPECT_TRUE(Contains(line, "hakmem memory: a large-block arena")) << line;
  hak_free(big);
}

// The death-test child starts from the default disposition (a sanitizer's handler, where there
// is one, is set aside) and installs hakmem's.
void InstallOnDefault(int sig) {
  signal(sig, SIG_DFL);
  hak_crash_install();
}

TEST(CrashDeathTest, AFaultOnAHakmemPageNamesItsClass) {
  // 8 KiB blocks start on page boundaries: one can be made inaccessible on its own.
  char* p = static_cast<char*>(hak_malloc(8192));
  EXPECT_DEATH(
      {
        InstallOnDefault(SIGSEGV);
        mprotect(p, 4096, PROT_NONE);
        *reinterpret_cast<volatile char*>(p) = 1;
      },
      // Linked statically, hakmem's code is the program's: the pc is not classified.
      "hakmem: SIGSEGV \\(invalid memory access\\) at address 0x[0-9a-f]+, pc 0x[0-9a-f]+; the "
      "address is hakmem memory: a mid-block slab of 8192-byte blocks \\(class " +
          std::to_string(hak_size_class(8192)) + "\\)");
  hak_free(p);
}

void ProgramHandler(int) { _exit(7); }

TEST(CrashDeathTest, AProgramsHandlerIsNeverReplaced) {
  EXPECT_EXIT(
      {
        signal(SIGBUS, ProgramHandler);
        hak_crash_install();
        raise(SIGBUS);
      },
      testing::ExitedWithCode(7), "");
}

TEST(Crash, OffWithHakmemCrashHandler0) {
  const int64_t saved = hak_config.crash_handler;
  struct sigaction before, after;
  sigaction(SIGBUS, nullptr, &before);
  signal(SIGBUS, SIG_DFL);
  hak_config.crash_handler = 0;
  hak_crash_install();
  sigaction(SIGBUS, nullptr, &after);
  EXPECT_EQ(after.sa_handler, SIG_DFL);
  EXPECT_FALSE(after.sa_flags & SA_SIGINFO);
  hak_config.crash_handler = saved;
  sigaction(SIGBUS, &before, nullptr);
}

TEST(CrashDeathTest, HakmemsOwnAbortPrintsOneLine) {
  void* p = hak_malloc(5000);
  EXPECT_DEATH(
      {
        InstallOnDefault(SIGABRT);
        hak_free(p);
        hak_free(p);
      },
      // Nothing after hakmem's line (but qemu-user's own report of the abort, under aarch64).
      "^hakmem: double free at 0x[0-9a-f]+: free\\(\\) of a 5120-byte block that is free already "
      "\\(freed before, or carved and never handed out\\); aborting\n"
      "(qemu: [^\n]*\n)?$");
  hak_free(p);
}

TEST(CrashDeathTest, AnAbortElsewhereIsNamed) {
  EXPECT_DEATH(
      {
        InstallOnDefault(SIGABRT);
        abort();
      },
      "hakmem: SIGABRT \\(abort\\) at address \\(nil\\); the address is not hakmem memory");
}

}  // namespace
