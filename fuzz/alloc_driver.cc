#include "fuzz/alloc_driver.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <iterator>

#include "hakmem/hakmem.h"

namespace hakfuzz {
namespace {

constexpr size_t kEdgeSizes[] = {
    0,       1,        7,         8,         15,        16,        17,       24,
    31,      32,       48,        64,        127,       128,       255,      256,
    257,     512,      1000,      1023,      1024,      1025,      1152,     2048,
    4095,    4096,     4097,      8192,      16384,     32768,     49152,    65535,
    65536,   65537,    69632,     131072,    262144,    1u << 20,  2u << 20, (2u << 20) + 1,
    4u << 20, (4u << 20) + 1, 8u << 20, kHugeMax,
};
constexpr size_t kEdgeCount = sizeof kEdgeSizes / sizeof kEdgeSizes[0];

// Positions whose bytes are written and checked: all of a small block; the first and last 64
// bytes and 8 samples between of a larger one.
template <typename F>
void ForEachChecked(size_t size, F f) {
  if (size <= 136) {
    for (size_t i = 0; i < size; i++) f(i);
    return;
  }
  for (size_t i = 0; i < 64; i++) f(i);
  for (size_t k = 1; k <= 8; k++) f(size / 9 * k);
  for (size_t i = size - 64; i < size; i++) f(i);
}

// Alignment C requires of a block of n bytes (hakmem promises 16 from 16 bytes up).
size_t NaturalAlignment(size_t n) {
  if (n >= 16) return 16;
  size_t a = 1;
  while (a * 2 <= n) a *= 2;
  return a;
}

size_t NextPowerOfTwo(size_t n) {
  size_t a = 1;
  while (a < n) a <<= 1;
  return a;
}

size_t PageRound(size_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); }

bool IsZero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

void CheckZero(const unsigned char* p, size_t n, const char* who, const char* op) {
  bool zero;
  if (n <= kMidMax) {
    zero = IsZero(p, n);
  } else {
    // Whole first 64 KiB and last page; one byte per page up to 1 MiB, per 64 KiB beyond.
    zero = IsZero(p, kMidMax) && IsZero(p + n - kPageSize, kPageSize);
    for (size_t i = kMidMax; zero && i < n; i += i < (1u << 20) ? kPageSize : kMidMax) {
      zero = p[i] == 0;
    }
  }
  if (!zero) Fail("%s: %s(%zu) returned %p, whose memory is not zero", who, op, n, (void*)p);
}

void CheckAlignment(const void* p, size_t n, size_t alignment, const char* who, const char* op) {
  if (((uintptr_t)p & (alignment - 1)) != 0) {
    Fail("%s: %s(%zu) returned %p, not aligned to %zu", who, op, n, p, alignment);
  }
}

}  // namespace

void FillBlock(const Block& b) {
  ForEachChecked(b.size, [&](size_t i) { b.ptr[i] = PatternAt(b.fill, i); });
  if (b.usable > b.size) b.ptr[b.usable - 1] = (uint8_t)~b.fill;
}

void CheckBlock(const Block& b, const char* who, const char* when) {
  ForEachChecked(b.size, [&](size_t i) {
    if (b.ptr[i] != PatternAt(b.fill, i)) {
      Fail("%s: block %p (%zu bytes) corrupted %s: byte %zu is 0x%02x, expected 0x%02x", who,
           (void*)b.ptr, b.size, when, i, b.ptr[i], PatternAt(b.fill, i));
    }
  });
}

void Shadow::Insert(const Block& b, const char* who, const char* op) {
  uintptr_t start = (uintptr_t)b.ptr;
  uintptr_t end = start + std::max<size_t>(b.usable, 1);
  auto next = ranges_.lower_bound(start);
  if (next != ranges_.end() && next->first < end) {
    Fail("%s: %s returned [%p, %p), overlapping live block [%p, %p)", who, op, (void*)start,
         (void*)end, (void*)next->first, (void*)next->second);
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->second > start) {
      Fail("%s: %s returned [%p, %p), overlapping live block [%p, %p)", who, op, (void*)start,
           (void*)end, (void*)prev->first, (void*)prev->second);
    }
  }
  ranges_.emplace_hint(next, start, end);
}

void Shadow::Erase(const Block& b, const char* who) {
  if (ranges_.erase((uintptr_t)b.ptr) != 1) Fail("%s: driver bug: %p not in shadow", who, b.ptr);
}

AllocDriver::AllocDriver(const char* who, unsigned slots, size_t budget)
    : who_(who), slots_(slots), budget_(budget) {}

void AllocDriver::Run(Input& in) {
  while (!in.empty()) Step(in);
}

void AllocDriver::FreeAll() {
  for (unsigned s = 0; s < slots_.size(); s++) Drop(s);
}

size_t AllocDriver::DecodeSize(Input& in) {
  uint8_t s = in.Byte();
  switch (s % 8) {
    case 0:
    case 1:
    case 2:
      return in.U16() % (kTinyMax + 1);
    case 3:
    case 4:
      return kTinyMax + 1 + in.U16() % (kMidMax - kTinyMax);
    case 5:
      return kMidMax + 1 + in.U24() % (kLargeMax - kMidMax);
    case 6: {
      size_t base = kEdgeSizes[(s >> 3) % kEdgeCount];
      int delta = in.Byte() % 9 - 4;
      return delta < 0 && base < (size_t)-delta ? 0 : base + delta;
    }
    default:
      if ((s >> 3) % 4 == 0) return kLargeMax + 1 + in.U24() % (kHugeMax - kLargeMax);
      return in.Byte();
  }
}

Block AllocDriver::Release(unsigned slot) {
  Block b = slots_[slot];
  CheckBlock(b, who_, "before it was handed over");
  shadow_.Erase(b, who_);
  live_bytes_ -= b.size;
  slots_[slot] = Block();
  return b;
}

void AllocDriver::Adopt(unsigned slot, const Block& b) {
  shadow_.Insert(b, who_, "a block handed over by another thread");
  live_bytes_ += b.size;
  slots_[slot] = b;
}

void AllocDriver::Drop(unsigned slot) {
  if (!Live(slot)) return;
  Block b = slots_[slot];
  CheckBlock(b, who_, "before free");
  size_t usable = hak_usable_size(b.ptr);
  if (usable != b.usable) {
    Fail("%s: usable size of %p changed from %zu to %zu", who_, (void*)b.ptr, b.usable, usable);
  }
  shadow_.Erase(b, who_);
  live_bytes_ -= b.size;
  slots_[slot] = Block();
  hak_free(b.ptr);
}

void AllocDriver::Install(unsigned slot, void* p, size_t n, size_t alignment, bool zeroed,
                          const char* op) {
  if (p == nullptr) Fail("%s: %s(%zu) returned NULL (errno %d)", who_, op, n, errno);
  CheckAlignment(p, n, alignment, who_, op);
  Block b;
  b.ptr = static_cast<unsigned char*>(p);
  b.size = n;
  b.usable = hak_usable_size(p);
  b.fill = NextFill();
  if (b.usable < n) Fail("%s: %s(%zu) returned %p with usable size %zu", who_, op, n, p, b.usable);
  if (zeroed) CheckZero(b.ptr, n, who_, op);
  shadow_.Insert(b, who_, op);
  FillBlock(b);
  live_bytes_ += n;
  slots_[slot] = b;
}

template <typename Call>
void AllocDriver::Resize(unsigned slot, size_t n, const char* op, Call call) {
  if (!Live(slot)) {
    Install(slot, call(nullptr, n), n, NaturalAlignment(n), false, op);
    return;
  }
  Block old = slots_[slot];
  CheckBlock(old, who_, "before realloc");
  live_bytes_ -= old.size;
  errno = 0;
  void* q = call(old.ptr, n);
  if (q == nullptr && n != 0) {
    Fail("%s: %s(%p, %zu) returned NULL (errno %d)", who_, op, (void*)old.ptr, n, errno);
  }
  shadow_.Erase(old, who_);
  slots_[slot] = Block();
  if (q == nullptr) return;  // size 0: freed, as glibc does
  // The old pattern must survive below min(old, new).
  auto* bytes = static_cast<unsigned char*>(q);
  size_t keep = std::min(old.size, n);
  ForEachChecked(old.size, [&](size_t i) {
    if (i < keep && bytes[i] != PatternAt(old.fill, i)) {
      Fail("%s: %s(%p, %zu) -> %p lost byte %zu of %zu (0x%02x, expected 0x%02x)", who_, op,
           (void*)old.ptr, n, q, i, old.size, bytes[i], PatternAt(old.fill, i));
    }
  });
  Install(slot, q, n, NaturalAlignment(n), false, op);
}

void AllocDriver::Step(Input& in) {
  unsigned op = in.Byte() % 32;
  unsigned slot = in.Byte() % slots_.size();
  if (CustomOp(op, slot, in)) return;
  switch (op) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: {
      size_t n = DecodeSize(in);
      Drop(slot);
      n = Fit(n);
      Install(slot, hak_malloc(n), n, NaturalAlignment(n), false, "malloc");
      break;
    }
    case 8: case 9: {
      size_t total = DecodeSize(in);
      uint8_t e = in.Byte();
      if (e == 0xff) {
        errno = 0;
        void* p = hak_calloc(SIZE_MAX / 2 + 2, 2 + total % 7);
        if (p != nullptr || errno != ENOMEM) {
          Fail("%s: overflowing calloc returned %p, errno %d", who_, p, errno);
        }
        break;
      }
      size_t elem = (size_t)1 << (e % 8);
      Drop(slot);
      size_t count = Fit(total) / elem;
      Install(slot, hak_calloc(count, elem), count * elem, NaturalAlignment(count * elem), true,
              "calloc");
      break;
    }
    case 10: case 11: case 12: case 13:
      Resize(slot, FitReplacing(slot, DecodeSize(in)), "realloc",
             [](void* p, size_t n) { return hak_realloc(p, n); });
      break;
    case 14: case 15: case 16: case 17: case 18: case 19: case 20:
      if (Live(slot)) {
        Drop(slot);
      } else {
        hak_free(nullptr);
      }
      break;
    case 21: case 22: {
      size_t alignment = (size_t)1 << (in.Byte() % 22);
      size_t n = DecodeSize(in);
      Drop(slot);
      n = Fit(n);
      Install(slot, hak_aligned_alloc(alignment, n), n,
              std::max(alignment, NaturalAlignment(n)), false, "aligned_alloc");
      break;
    }
    case 23: case 24: {
      size_t alignment = (size_t)1 << (3 + in.Byte() % 19);
      size_t n = DecodeSize(in);
      Drop(slot);
      n = Fit(n);
      void* p = nullptr;
      int rc = hak_posix_memalign(&p, alignment, n);
      if (rc != 0) Fail("%s: posix_memalign(%zu, %zu) failed with %d", who_, alignment, n, rc);
      Install(slot, p, n, std::max(alignment, NaturalAlignment(n)), false, "posix_memalign");
      break;
    }
    case 25:
      if (Live(slot)) {
        const Block& b = slots_[slot];
        CheckBlock(b, who_, "at a usable_size check");
        size_t usable = hak_usable_size(b.ptr);
        if (usable != b.usable) {
          Fail("%s: usable size of %p changed from %zu to %zu", who_, (void*)b.ptr, b.usable,
               usable);
        }
      } else if (hak_usable_size(nullptr) != 0) {
        Fail("%s: usable_size(NULL) is not 0", who_);
      }
      break;
    case 26: {
      size_t alignment = 1 + in.U24() % (2u << 20);
      size_t n = DecodeSize(in);
      Drop(slot);
      n = Fit(n);
      Install(slot, hak_memalign(alignment, n), n,
              std::max(NextPowerOfTwo(alignment), NaturalAlignment(n)), false, "memalign");
      break;
    }
    case 27: {
      bool page_rounded = in.Byte() & 1;
      size_t n = DecodeSize(in);
      Drop(slot);
      n = Fit(n);
      if (page_rounded) {
        // pvalloc promises whole pages (at least one): all of them may be written.
        size_t rounded = n == 0 ? kPageSize : PageRound(n);
        Install(slot, hak_pvalloc(n), rounded, kPageSize, false, "pvalloc");
      } else {
        Install(slot, hak_valloc(n), n, kPageSize, false, "valloc");
      }
      break;
    }
    case 28: {
      size_t total = DecodeSize(in);
      uint8_t e = in.Byte();
      if (e == 0xff) {
        void* p = Live(slot) ? slots_[slot].ptr : nullptr;
        errno = 0;
        void* q = hak_reallocarray(p, SIZE_MAX / 4, 8);
        if (q != nullptr || errno != ENOMEM) {
          Fail("%s: overflowing reallocarray(%p) returned %p, errno %d", who_, p, q, errno);
        }
        if (p != nullptr) CheckBlock(slots_[slot], who_, "after a failed reallocarray");
        break;
      }
      size_t elem = (size_t)1 << (e % 8);
      Resize(slot, FitReplacing(slot, total) / elem * elem, "reallocarray",
             [elem](void* p, size_t n) { return hak_reallocarray(p, n / elem, elem); });
      break;
    }
    case 29:
      EdgeCases(slot, in.Byte() % 4);
      break;
    case 30:
      FreeAll();
      break;
    case 31:
      hak_trim();
      break;
  }
}

void AllocDriver::EdgeCases(unsigned slot, unsigned which) {
  switch (which) {
    case 0: {  // invalid alignments
      for (size_t alignment : {(size_t)0, (size_t)3, (size_t)24, (size_t)4097, SIZE_MAX}) {
        errno = 0;
        void* p = hak_aligned_alloc(alignment, 10);
        if (p != nullptr || errno != EINVAL) {
          Fail("%s: aligned_alloc(%zu, 10) returned %p, errno %d", who_, alignment, p, errno);
        }
      }
      for (size_t alignment : {(size_t)0, (size_t)2, (size_t)4, (size_t)24, (size_t)4097}) {
        void* p = &slots_;
        int rc = hak_posix_memalign(&p, alignment, 10);
        if (rc != EINVAL || p != &slots_) {
          Fail("%s: posix_memalign(%zu, 10) returned %d and set %p", who_, alignment, rc, p);
        }
      }
      break;
    }
    case 1: {  // sizes that cannot be satisfied
      errno = 0;
      void* p = hak_malloc(SIZE_MAX - slot);
      if (p != nullptr || errno != ENOMEM) Fail("%s: malloc(SIZE_MAX) gave %p", who_, p);
      errno = 0;
      p = hak_calloc(SIZE_MAX / 2 + 1, 3);
      if (p != nullptr || errno != ENOMEM) Fail("%s: overflowing calloc gave %p", who_, p);
      errno = 0;
      p = hak_aligned_alloc(4096, SIZE_MAX - 4096);
      if (p != nullptr || errno != ENOMEM) Fail("%s: aligned_alloc(SIZE_MAX) gave %p", who_, p);
      errno = 0;
      p = hak_pvalloc(SIZE_MAX - 10);
      if (p != nullptr || errno != ENOMEM) Fail("%s: pvalloc(SIZE_MAX) gave %p", who_, p);
      p = nullptr;
      int rc = hak_posix_memalign(&p, 64, SIZE_MAX - 100);
      if (rc != ENOMEM || p != nullptr) Fail("%s: posix_memalign(SIZE_MAX) gave %d", who_, rc);
      if (Live(slot)) {
        const Block& b = slots_[slot];
        errno = 0;
        void* q = hak_realloc(b.ptr, SIZE_MAX - 10);
        if (q != nullptr || errno != ENOMEM) Fail("%s: realloc(SIZE_MAX) gave %p", who_, q);
        CheckBlock(b, who_, "after a failed realloc");
      }
      break;
    }
    case 2:  // realloc(p, 0) frees p (glibc's behaviour); realloc(NULL, 0) is malloc(0)
      Resize(slot, 0, "realloc", [](void* p, size_t n) { return hak_realloc(p, n); });
      break;
    case 3:
      hak_free(nullptr);
      if (hak_usable_size(nullptr) != 0) Fail("%s: usable_size(NULL) is not 0", who_);
      break;
  }
}

}  // namespace hakfuzz
