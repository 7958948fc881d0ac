// The engine's thread: lazy start, stop and restart, idle memory given back end to end, and its
// life across fork and exit. Runs with a 5 ms interval and a 20 ms idle time (BUILD).
#include "hakmem/ace/engine.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "hakmem/ace/policy.h"
#include "hakmem/config.h"
#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"

namespace {

// The aarch64 config turns the engine off for every test (.bazelrc); these test it.
const bool engine_on = [] {
  hak_config_init_once();
  hak_config.ace = 1;
  return true;
}();

using std::chrono::milliseconds;
using std::chrono::steady_clock;

hak_ace_engine_status_t Status() {
  hak_ace_engine_status_t s;
  hak_ace_engine_status(&s);
  return s;
}

// Waits up to `limit` for pred() to hold.
template <typename Pred>
bool WaitFor(Pred pred, milliseconds limit) {
  auto end = steady_clock::now() + limit;
  while (!pred()) {
    if (steady_clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// Several hundred slow-path allocations: 1 KiB blocks are carved 8 at a time.
void ManySlowPaths() {
  std::vector<void*> blocks;
  for (int i = 0; i < 8 * 600; i++) blocks.push_back(hak_malloc(1000));
  for (void* p : blocks) hak_free(p);
}

// Runs f in a child process; returns its exit status (or 128 + signal), -1 if it took over 20 s.
template <typename F>
int InChild(F f) {
  pid_t pid = fork();
  if (pid == 0) _exit(f());
  int status = 0;
  for (int i = 0; i < 2000; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// With one thread the program's slow paths run the windows; a second thread that allocates
// makes the engine start a thread of its own.
TEST(Engine, RunsFromTheSlowPathWithOneThreadAndInAThreadOfItsOwnWithMore) {
  ManySlowPaths();
  uint64_t windows = Status().windows;
  EXPECT_TRUE(WaitFor(
      [&] {
        ManySlowPaths();
        return Status().windows >= windows + 3;
      },
      milliseconds(5000)));
  EXPECT_EQ(Status().running, 0) << "no thread of its own in a program of one thread";
  std::thread second([] {
    EXPECT_TRUE(WaitFor(
        [] {
          ManySlowPaths();
          return Status().running != 0;
        },
        milliseconds(5000)));
  });
  second.join();
  windows = Status().windows;
  EXPECT_TRUE(WaitFor([&] { return Status().windows >= windows + 3; }, milliseconds(2000)))
      << "its thread runs windows without any allocation";
}

TEST(Engine, StopsAndStartsAgain) {
  ASSERT_EQ(hak_ace_engine_start(), 1);
  hak_ace_engine_stop();
  EXPECT_EQ(Status().running, 0);
  uint64_t windows = Status().windows;
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(Status().windows, windows) << "no window while stopped";
  ManySlowPaths();
  EXPECT_EQ(Status().running, 0) << "a stop is not undone by the lazy start";
  ASSERT_EQ(hak_ace_engine_start(), 1);
  EXPECT_TRUE(WaitFor([&] { return Status().windows > windows; }, milliseconds(2000)));
}

// A thread fills a mid cache and moves on to other sizes: within a few idle times the class is
// idle, and the thread's next slow paths give its blocks and pages back.
TEST(Engine, AClassNoThreadUsesGivesBackItsMemory) {
  ASSERT_EQ(hak_ace_engine_start(), 1);
  std::thread t([] {
    const unsigned cls = hak_size_class(5500);  // 5632 B: no other test here uses it
    std::vector<void*> blocks;
    for (int i = 0; i < 150; i++) blocks.push_back(hak_malloc(5500));
    for (void* p : blocks) hak_free(p);
    const hak_mid_cache_t& cache = hak_tls.heap->mid_cache[cls - HAK_TINY_CLASSES];
    ASSERT_EQ(cache.count, 150u);
    hak_segment_totals_t before;
    hak_segment_totals(&before);
    bool released = WaitFor(
        [&] {
          ManySlowPaths();  // other sizes, and slow paths to take up the policy on
          return cache.count == 0;
        },
        milliseconds(5000));
    EXPECT_TRUE(released);
    hak_segment_totals_t after;
    hak_segment_totals(&after);
    EXPECT_GE(after.purged_bytes - before.purged_bytes, (size_t)150 * 5632);
  });
  t.join();
}

// Whether a fork child of this (threaded) process may start threads here. glibc allows it, but
// qemu-user (the aarch64 config's test runner) aborts in its own code, and ThreadSanitizer keeps
// the parent's threads in its registry, so a child's new thread may reuse one's id ("dup
// thread").
#if defined(__aarch64__) || HAK_TSAN
constexpr bool kChildMayStartThreads = false;
#else
constexpr bool kChildMayStartThreads = true;
#endif

TEST(Engine, AForkChildRunsAnEngineOfItsOwn) {
  ASSERT_EQ(hak_ace_engine_start(), 1);
  for (int i = 0; i < 5; i++) {
    int status = InChild([] {
      if (Status().running) return 10;  // the parent's thread is not the child's
      hak_ace_policy_t p;
      hak_ace_policy_read(&p);  // whole, never waiting on a writer the child lacks
      uint64_t windows = Status().windows;
      // One thread: its slow paths run the windows.
      auto advanced = [&] {
        ManySlowPaths();
        return Status().windows >= windows + 2;
      };
      if (!WaitFor(advanced, milliseconds(3000))) return 11;
      if (!kChildMayStartThreads) return 0;
      // Two: the engine's thread starts.
      bool started = false;
      std::thread second([&] {
        started = WaitFor(
            [] {
              ManySlowPaths();
              return Status().running != 0;
            },
            milliseconds(3000));
      });
      second.join();
      if (!started) return 12;
      return 0;
    });
    EXPECT_EQ(status, 0) << "fork " << i;
  }
  EXPECT_EQ(Status().running, 1) << "the parent's engine runs on";
}

// A policy whose every field follows from its version: a copy mixing two snapshots shows.
hak_ace_policy_t Derived(uint64_t version) {
  hak_ace_policy_t p = {};
  p.mid_round_pct = 100 + (uint32_t)(version % 50);
  p.large_round_pct = 100 + (uint32_t)(version % 40);
  for (unsigned i = 0; i < HAK_ACE_MID_CLASSES; i++) p.mid_cache_limit[i] = 1 + (uint32_t)((version + i) % 997);
  return p;
}

bool Whole(const hak_ace_policy_t& p) {
  hak_ace_policy_t want = Derived(p.version);
  bool whole = p.mid_round_pct == want.mid_round_pct && p.large_round_pct == want.large_round_pct &&
               p.extra_class_size == 0;
  for (unsigned i = 0; i < HAK_ACE_MID_CLASSES; i++) whole &= p.mid_cache_limit[i] == want.mid_cache_limit[i];
  for (unsigned w = 0; w < HAK_ACE_CLASS_WORDS; w++) whole &= p.idle_classes[w] == 0;
  return whole;
}

TEST(Engine, ForksWhilePoliciesArePublishedLeaveChildrenAWholePolicy) {
  hak_ace_engine_stop();  // the thread below is the one publisher
  const uint64_t engines_last = hak_ace_policy_version();
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop.load()) {
      hak_ace_policy_t p = Derived(hak_ace_policy_version() + 1);
      hak_ace_policy_publish(&p);
    }
  });
  while (hak_ace_policy_version() <= engines_last + 1) std::this_thread::yield();
  for (int i = 0; i < 20; i++) {
    int status = InChild([] {
      hak_ace_policy_t p;
      if (hak_ace_policy_read(&p) == 0) return 10;
      if (!Whole(p)) return 11;
      hak_free(hak_malloc(100));  // takes up the policy
      return 0;
    });
    EXPECT_EQ(status, 0) << "fork " << i;
  }
  stop = true;
  publisher.join();
  hak_ace_policy_t last;
  ASSERT_NE(hak_ace_policy_read(&last), 0u);
  EXPECT_TRUE(Whole(last));
}

TEST(Engine, AProcessExitsWhileItRuns) {
  if (!kChildMayStartThreads) GTEST_SKIP() << "the child would start the engine's thread";
  int status = InChild([] {
    if (hak_ace_engine_start() != 1) return 10;
    ManySlowPaths();
    exit(0);  // destructors and atexit handlers run while the engine thread sleeps or observes
  });
  EXPECT_EQ(status, 0);
}

}  // namespace
