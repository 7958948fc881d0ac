#include "hakmem/crash.h"

#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "hakmem/config.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT};

// The executable part of libhakmem.so, found once at install time (dladdr is not safe inside a
// handler). Empty when hakmem is linked statically into the program: its code and the program's
// are then one object and the line does not tell them apart.
static uintptr_t text_start, text_end;
static int text_searched;

static int find_text(struct dl_phdr_info* info, size_t size, void* base) {
  (void)size;
  if ((void*)info->dlpi_addr != base) return 0;
  if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0') return 1;  // the program itself
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      text_start = info->dlpi_addr + ph->p_vaddr;
      text_end = text_start + ph->p_memsz;
      return 1;
    }
  }
  return 0;
}

static const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGABRT: return "SIGABRT (abort)";
    default: return "signal";
  }
}

static const char* kind_name(uintptr_t kind) {
  switch (kind) {
    case HAK_KIND_SMALL: return "a small-block slab";
    case HAK_KIND_MEDIUM: return "a mid-block slab";
    case HAK_KIND_LARGE: return "a large-block arena";
    case HAK_KIND_HUGE: return "a huge block";
    default: return "an unknown region";
  }
}

// What `address` is, into `out`.
static void describe_address(const void* address, char* out, size_t size) {
  uintptr_t word = hak_map_word_checked(address);
  if (word == 0) {
    snprintf(out, size, "not hakmem memory");
    return;
  }
  uintptr_t kind = word & HAK_KIND_MASK;
  hak_segment_t* seg = hak_segment_lookup(address, word);
  if (seg != NULL) {
    const hak_slab_t* slab = hak_slab_of_shift(address, seg->slab_shift);
    unsigned cls = slab->class_idx;
    if (cls < HAK_CLASS_COUNT) {
      snprintf(out, size, "hakmem memory: %s of %u-byte blocks (class %u)", kind_name(kind),
               (unsigned)hak_class_size(cls), cls);
      return;
    }
    snprintf(out, size, "hakmem memory: a free slab");
    return;
  }
  snprintf(out, size, "hakmem memory: %s", kind_name(kind));
}

void hak_crash_describe(int fd, int sig, const void* address, const void* pc) {
  char what[128];
  describe_address(address, what, sizeof what);
  char line[320];
  int n;
  if (pc == NULL) {
    n = snprintf(line, sizeof line, "hakmem: %s at address %p; the address is %s\n",
                 signal_name(sig), address, what);
  } else if (text_end == 0) {
    n = snprintf(line, sizeof line, "hakmem: %s at address %p, pc %p; the address is %s\n",
                 signal_name(sig), address, pc, what);
  } else {
    int ours = (uintptr_t)pc >= text_start && (uintptr_t)pc < text_end;
    n = snprintf(line, sizeof line, "hakmem: %s at address %p, pc %p %s hakmem's code; the "
                 "address is %s\n", signal_name(sig), address, pc, ours ? "in" : "outside", what);
  }
  if (n > 0) {
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    ssize_t ignored = write(fd, line, len);
    (void)ignored;
  }
}

static const void* fault_pc(const void* context) {
  const ucontext_t* uc = (const ucontext_t*)context;
  if (uc == NULL) return NULL;
#if defined(__x86_64__)
  return (const void*)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
  return (const void*)uc->uc_mcontext.pc;
#else
  return NULL;
#endif
}

static void on_crash(int sig, siginfo_t* info, void* context) {
  // hak_fatal has printed the real reason before its abort.
  if (!(sig == SIGABRT && hak_fatal_reported)) {
    int fault = sig != SIGABRT && info->si_code > 0;  // raised by the kernel for an access
    hak_crash_describe(STDERR_FILENO, sig, fault ? info->si_addr : NULL,
                       fault ? fault_pc(context) : NULL);
  }
  // SA_RESETHAND made the disposition the default again; the signal is blocked until this
  // handler returns, then it kills the process as if no handler had run.
  raise(sig);
}

void hak_crash_install(void) {
  if (!hak_config.crash_handler) return;
  if (!text_searched) {
    text_searched = 1;
    Dl_info self;
    if (dladdr((void*)hak_crash_install, &self) != 0) dl_iterate_phdr(find_text, self.dli_fbase);
  }
  for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) {
    struct sigaction old;
    if (sigaction(crash_signals[i], NULL, &old) != 0) continue;
    // Ours already, or the program's (or a sanitizer's): leave it.
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(crash_signals[i], &sa, NULL);
  }
}
