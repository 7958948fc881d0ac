// crash: one diagnostic line when the process dies of SIGSEGV, SIGBUS or SIGABRT, then the
// default action (core dump and all).
//
// Owns: the three signal handlers. May use: base, config, segment, slab, size_class. Installed
// once at init when HAKMEM_CRASH_HANDLER=1 (the default), and only for a signal whose
// disposition is still the default: a handler the program set first is never replaced.
//
// The line says which signal, the faulting address and whether it is hakmem memory (and then
// which kind, and for slab memory the block size and class), and, in libhakmem.so, whether the
// faulting instruction is hakmem's code. A SIGABRT from hakmem's own heap-corruption check (hak_fatal)
// has printed its line already and adds none.
#ifndef HAKMEM_CRASH_H
#define HAKMEM_CRASH_H

#include <stddef.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// Installs the handler for each signal whose disposition is the default, if
// hak_config.crash_handler is set. Idempotent.
void hak_crash_install(void);

// Writes the diagnostic line for `sig` at `address` (faulting instruction `pc`, or NULL) to
// file descriptor `fd`. Async-signal-safe; exposed for tests.
void hak_crash_describe(int fd, int sig, const void* address, const void* pc);

HAK_EXTERN_C_END

#endif  // HAKMEM_CRASH_H
