#include "hakmem/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void write_all(const char* text, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, text, len);
    if (n <= 0) return;
    text += n;
    len -= (size_t)n;
  }
}

volatile int hak_fatal_reported;

void hak_fatal(const char* what, const void* address, const char* detail) {
  hak_fatal_reported = 1;
  // snprintf into a stack buffer does not allocate; fprintf could.
  char line[384];
  int n = snprintf(line, sizeof line, "hakmem: %s at %p%s%s; aborting\n", what, address,
                   detail ? ": " : "", detail ? detail : "");
  if (n > 0) write_all(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  abort();
}

void hak_warn(const char* fmt, ...) {
  char line[256];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, args);
  va_end(args);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
  line[len++] = '\n';
  write_all(line, len);
}
