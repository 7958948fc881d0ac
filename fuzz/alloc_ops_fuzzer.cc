// Single-thread allocator fuzzer: the input is a sequence of hak_* calls on 64 slots (format and
// checks in fuzz/alloc_driver.h); every live block is checked and freed at the end of the input.
#include <stddef.h>
#include <stdint.h>

#include "fuzz/alloc_driver.h"
#include "fuzz/fuzz_util.h"

namespace {
constexpr unsigned kSlots = 64;
// Requested bytes held live at once (RSS stays a fraction of it: only sampled bytes are written).
constexpr size_t kBudget = 256u << 20;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hakfuzz::Input in(data, size);
  hakfuzz::AllocDriver driver("alloc_ops", kSlots, kBudget);
  driver.Run(in);
  driver.FreeAll();
  return 0;
}
