/* class_counters: the counters every thread heap keeps per size class, on its slow paths only
 * (so release builds keep them: they cost nothing on the fast paths). This one list drives the
 * heap's struct, the sums over heaps, what the adaptive cache engine observes, hak_class_stats_t
 * and the HAKMEM_STATS report. X(name, report column, meaning). */
#ifndef HAKMEM_CLASS_COUNTERS_H
#define HAKMEM_CLASS_COUNTERS_H

#define HAK_CLASS_COUNTERS(X)                                                        \
  X(refills, "refills", "times the class's current slab ran dry")                    \
  X(fresh_blocks, "fresh", "blocks cut from never-used slab memory")                 \
  X(remote_frees, "remote", "blocks freed by another thread, collected by the owner") \
  X(cache_overflows, "overflow", "mid classes: the thread's cache was full on a free") \
  X(cache_misses, "misses", "mid classes: requests that found the thread's cache empty") \
  X(cache_flushed, "flushed", "mid classes: cached blocks given back to their slabs")

#endif /* HAKMEM_CLASS_COUNTERS_H */
