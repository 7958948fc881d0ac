// Helpers shared by the fuzz drivers: a byte reader that never runs past the input, and Fail(),
// which prints one line and traps (libFuzzer saves the input; the replay main dies with SIGILL).
#ifndef HAKMEM_FUZZ_FUZZ_UTIL_H
#define HAKMEM_FUZZ_FUZZ_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace hakfuzz {

// File descriptor Fail() writes to. A driver that has libFuzzer discard its stderr
// (-close_fd_mask=2) points this at a duplicate of the original stderr in LLVMFuzzerInitialize.
inline int& ReportFd() {
  static int fd = STDERR_FILENO;
  return fd;
}

[[noreturn]] __attribute__((format(printf, 1, 2))) inline void Fail(const char* fmt, ...) {
  char line[512];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, args);
  va_end(args);
  size_t len = n < 0 ? 0 : (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
  line[len++] = '\n';
  ssize_t ignored = write(ReportFd(), line, len);
  (void)ignored;
  __builtin_trap();
}

// Reads the input front to back; past the end every read yields zero bytes.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return size_ == 0; }
  size_t remaining() const { return size_; }

  uint8_t Byte() {
    if (size_ == 0) return 0;
    size_--;
    return *data_++;
  }
  // Little endian.
  uint32_t U16() { return Byte() | (uint32_t)Byte() << 8; }
  uint32_t U24() { return U16() | (uint32_t)Byte() << 16; }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)Byte() << (8 * i);
    return v;
  }
  // Splits off the next `n` bytes (fewer if the input is shorter) as an input of its own.
  Input Take(size_t n) {
    if (n > size_) n = size_;
    Input part(data_, n);
    data_ += n;
    size_ -= n;
    return part;
  }
  const uint8_t* data() const { return data_; }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace hakfuzz

#endif  // HAKMEM_FUZZ_FUZZ_UTIL_H
