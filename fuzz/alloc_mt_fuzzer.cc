// Multi-thread allocator fuzzer. Byte 0 picks 2-4 threads; the rest of the input is cut into that
// many equal slices, and each thread runs its slice through its own AllocDriver (32 slots, own
// shadow: overlap checks are per thread). Ops 26-29 (see fuzz/alloc_driver.h) are replaced:
//   26-27  send: the slot's block (pattern checked) goes to the mailbox of thread
//          (self + 1 + byte % (threads - 1)) % threads      arguments: byte
//   28-29  receive: the oldest block in this thread's mailbox is checked, then freed here (a
//          remote free) or, when byte & 1 and the slot is empty, kept in the slot (its later
//          realloc or free is remote too); an empty mailbox yields instead   arguments: byte
// Mailboxes are mutex-protected, so a block's pattern is written before the handover and read
// after it. The threads start together; blocks still in mailboxes after they exit are checked
// and freed by the main thread. Every input creates and ends its threads, so thread-exit and
// heap-adoption paths run all the time.
#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "fuzz/alloc_driver.h"
#include "fuzz/fuzz_util.h"
#include "hakmem/hakmem.h"

namespace {

constexpr unsigned kSlots = 32;
// Live bytes per thread, and bytes waiting in each mailbox: at most 4 * (32 + 32) MiB in all.
constexpr size_t kThreadBudget = 32u << 20;
constexpr size_t kMailboxBytes = 32u << 20;
constexpr size_t kMailboxBlocks = 16;

class Mailbox {
 public:
  // False (and the caller keeps the block) when the mailbox is full.
  bool Push(const hakfuzz::Block& b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (blocks_.size() >= kMailboxBlocks || bytes_ + b.size > kMailboxBytes) return false;
    blocks_.push_back(b);
    bytes_ += b.size;
    return true;
  }
  bool Pop(hakfuzz::Block* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (blocks_.empty()) return false;
    *out = blocks_.front();
    blocks_.pop_front();
    bytes_ -= out->size;
    return true;
  }

 private:
  std::mutex mu_;
  std::deque<hakfuzz::Block> blocks_;
  size_t bytes_ = 0;
};

void CheckAndFree(const hakfuzz::Block& b, const char* who) {
  hakfuzz::CheckBlock(b, who, "when received");
  size_t usable = hak_usable_size(b.ptr);
  if (usable != b.usable) {
    hakfuzz::Fail("%s: usable size of received %p changed from %zu to %zu", who, (void*)b.ptr,
                  b.usable, usable);
  }
  hak_free(b.ptr);
}

class ThreadDriver : public hakfuzz::AllocDriver {
 public:
  ThreadDriver(unsigned self, std::vector<Mailbox>* mailboxes)
      : AllocDriver("alloc_mt", kSlots, kThreadBudget), self_(self), mailboxes_(mailboxes) {}

 protected:
  bool CustomOp(unsigned op, unsigned slot, hakfuzz::Input& in) override {
    if (op < 26 || op > 29) return false;
    uint8_t arg = in.Byte();
    unsigned threads = (unsigned)mailboxes_->size();
    if (op <= 27) {  // send
      if (!Live(slot)) return true;
      hakfuzz::Block b = Release(slot);
      unsigned target = (self_ + 1 + arg % (threads - 1)) % threads;
      if (!(*mailboxes_)[target].Push(b)) CheckAndFree(b, who());
      return true;
    }
    hakfuzz::Block b;  // receive
    if (!(*mailboxes_)[self_].Pop(&b)) {
      std::this_thread::yield();
      return true;
    }
    if ((arg & 1) && !Live(slot) && Fits(b.size)) {
      hakfuzz::CheckBlock(b, who(), "when received");
      Adopt(slot, b);
    } else {
      CheckAndFree(b, who());
    }
    return true;
  }

 private:
  unsigned self_;
  std::vector<Mailbox>* mailboxes_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hakfuzz::Input in(data, size);
  unsigned threads = 2 + in.Byte() % 3;
  std::vector<Mailbox> mailboxes(threads);
  std::vector<hakfuzz::Input> slices;
  size_t total = in.remaining();
  for (unsigned t = 0; t < threads; t++) {
    slices.push_back(in.Take(total * (t + 1) / threads - total * t / threads));
  }
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; t++) {
    workers.emplace_back([&, t] {
      ThreadDriver driver(t, &mailboxes);
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      driver.Run(slices[t]);
      driver.FreeAll();
    });
  }
  for (auto& w : workers) w.join();
  hakfuzz::Block b;
  for (auto& mailbox : mailboxes) {
    while (mailbox.Pop(&b)) CheckAndFree(b, "alloc_mt (main thread)");
  }
  return 0;
}
