#include "hakmem/purge_hint.h"

int hak_purge_waiting;
void (*hak_purge_starter)(void);

void hak_purge_start(void) {
  void (*start)(void) = __atomic_load_n(&hak_purge_starter, __ATOMIC_RELAXED);
  if (start != NULL) start();
}
