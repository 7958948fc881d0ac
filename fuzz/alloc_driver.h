// AllocDriver: decodes fuzz input into hak_* calls on a fixed set of slots and checks every result
// against a shadow of the live blocks. Shared by alloc_ops_fuzzer (one driver) and
// alloc_mt_fuzzer (one driver per thread).
//
// Input format, repeated until the input runs out (missing bytes read as zero):
//   op byte, slot byte (slot = byte % slot count), then the op's arguments:
//   op % 32   call                                   arguments
//   0-7       malloc(n)                              size
//   8-9       calloc(count, elem)                    size, elem byte (elem = 1 << (b % 8);
//                                                    0xff: an overflowing count, expects ENOMEM)
//   10-13     realloc(p, n)                          size
//   14-20     free(p)                                -
//   21-22     aligned_alloc(1 << (b % 22), n)        align byte, size
//   23-24     posix_memalign(1 << (3 + b % 19), n)   align byte, size
//   25        usable_size(p), pattern check          -
//   26        memalign(1 + u24 % 2 MiB, n)           u24, size (mostly not a power of two)
//   27        valloc(n) / pvalloc(n) (b & 1)         byte, size
//   28        reallocarray(p, count, elem)           size, elem byte (0xff: overflow)
//   29        edge cases (b % 4): invalid            byte
//             alignments, overflowing sizes,
//             realloc(p, 0), free(NULL)
//   30        free every slot                        -
//   31        hak_trim()                             -
//   A subclass may take over any op (CustomOp); the multi-thread driver uses 26-29.
//
// Size (first byte s):
//   s % 8 in 0-2: tiny, u16 % 1025               s % 8 in 3-4: mid, 1025 + u16 % 64512
//   s % 8 == 5: large, 65537 + u24 % (4 MiB - 64 KiB)
//   s % 8 == 6: an edge size (kEdgeSizes[(s >> 3) % count]) + (byte % 9) - 4
//   s % 8 == 7: (s >> 3) % 4 == 0: huge, 4 MiB + 1 + u24 % 12 MiB; else byte (0-255)
// A size that would take the live total over the driver's budget is reduced to tiny (n % 1025).
//
// Checks after every call: the result is non-NULL (sizes here never exhaust memory), aligned
// (16 for sizes >= 16, the largest power of two <= n below, the requested alignment for the
// aligned calls), usable_size >= n and stable, [p, p + usable) overlaps no other live block,
// calloc memory is zero, realloc keeps the bytes of the old pattern below min(old, new), and the
// pattern written into a block (first/last 64 bytes, 8 samples between) is intact before realloc
// and free. Errors on invalid or overflowing arguments return NULL with errno (or the return code)
// that C/POSIX name.
#ifndef HAKMEM_FUZZ_ALLOC_DRIVER_H
#define HAKMEM_FUZZ_ALLOC_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include <map>
#include <vector>

#include "fuzz/fuzz_util.h"

namespace hakfuzz {

constexpr size_t kTinyMax = 1024;
constexpr size_t kMidMax = 64 * 1024;
constexpr size_t kLargeMax = 4u << 20;
constexpr size_t kHugeMax = 16u << 20;
constexpr size_t kPageSize = 4096;

struct Block {
  unsigned char* ptr = nullptr;
  size_t size = 0;     // bytes requested (and written)
  size_t usable = 0;   // hak_usable_size when it was allocated
  uint8_t fill = 0;    // seed of the byte pattern in the checked positions
};

// Pattern byte at `pos` of a block filled with `fill` (depends on the position, so a copy to the
// wrong offset shows).
inline uint8_t PatternAt(uint8_t fill, size_t pos) {
  return (uint8_t)(fill ^ (uint8_t)(pos * 0x9d) ^ (uint8_t)(pos >> 9));
}

// Writes the pattern into the checked positions of b (and one byte at usable - 1).
void FillBlock(const Block& b);
// Traps unless every checked position of b holds its pattern byte.
void CheckBlock(const Block& b, const char* who, const char* when);

// Live blocks of one driver as [start, end) ranges, for overlap checks.
class Shadow {
 public:
  void Insert(const Block& b, const char* who, const char* op);
  void Erase(const Block& b, const char* who);
  size_t size() const { return ranges_.size(); }

 private:
  std::map<uintptr_t, uintptr_t> ranges_;
};

class AllocDriver {
 public:
  // `who` names the driver in failure messages; `budget` bounds the requested bytes held live.
  AllocDriver(const char* who, unsigned slots, size_t budget);
  virtual ~AllocDriver() = default;

  // Runs ops until `in` is exhausted.
  void Run(Input& in);
  // Decodes and runs one op.
  void Step(Input& in);
  // Checks and frees every live block.
  void FreeAll();

  const char* who() const { return who_; }

 protected:
  // Handles `op` instead of the table above; returns false to leave it to the table.
  virtual bool CustomOp(unsigned op, unsigned slot, Input& in) {
    (void)op;
    (void)slot;
    (void)in;
    return false;
  }

  bool Live(unsigned slot) const { return slots_[slot].ptr != nullptr; }
  // Checks slot's block and takes it out of the shadow and the budget; the block stays allocated
  // and now belongs to the caller.
  Block Release(unsigned slot);
  // Puts a block received from elsewhere (already checked) into an empty slot.
  void Adopt(unsigned slot, const Block& b);
  // Whether n more live bytes fit in the budget.
  bool Fits(size_t n) const { return live_bytes_ + n <= budget_; }

 private:
  size_t DecodeSize(Input& in);
  size_t Fit(size_t n) const { return Fits(n) ? n : n % (kTinyMax + 1); }
  // Fit for a block that replaces slot's block.
  size_t FitReplacing(unsigned slot, size_t n) const {
    size_t old = slots_[slot].size;
    return live_bytes_ - old + n <= budget_ ? n : n % (kTinyMax + 1);
  }
  uint8_t NextFill() { return (uint8_t)(fill_counter_ += 0x3b); }
  // Checks and frees slot's block, if any.
  void Drop(unsigned slot);
  // Checks a fresh block p of n bytes (aligned to `alignment`, zero if `zeroed`) and puts it in
  // the empty slot.
  void Install(unsigned slot, void* p, size_t n, size_t alignment, bool zeroed, const char* op);
  // realloc / reallocarray of slot to n bytes (already fitted) through `call`.
  template <typename Call>
  void Resize(unsigned slot, size_t n, const char* op, Call call);
  void EdgeCases(unsigned slot, unsigned which);

  const char* who_;
  std::vector<Block> slots_;
  Shadow shadow_;
  size_t budget_;
  size_t live_bytes_ = 0;
  uint8_t fill_counter_ = 0;
};

}  // namespace hakfuzz

#endif  // HAKMEM_FUZZ_ALLOC_DRIVER_H
