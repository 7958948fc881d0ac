// fork_stress: --threads workers allocate and free without pause while the main thread forks.
// Each child allocates, verifies and frees a working set (the allocator must not be left locked
// or torn by the fork) and exits; the parent checks every child's status.
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress/stress_util.h"

#define SLOTS 512

static atomic_int stop;

static void* churn(void* arg) {
  uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)((intptr_t)arg + 1);
  void* slot[SLOTS] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % SLOTS);
    stress_free(slot[k]);
    slot[k] = stress_alloc(stress_size(r >> 16));
    atomic_fetch_add_explicit(&stress_ops, 1, memory_order_relaxed);
  }
  for (int k = 0; k < SLOTS; k++) stress_free(slot[k]);
  return NULL;
}

static int child(void) {
  uint64_t seed = (uint64_t)getpid();
  void* slot[SLOTS] = {0};
  for (int i = 0; i < 20 * SLOTS; i++) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % SLOTS);
    stress_free(slot[k]);
    slot[k] = stress_alloc(stress_size(r >> 16));
  }
  for (int k = 0; k < SLOTS; k++) stress_free(slot[k]);
  hak_trim();
  return 0;
}

int main(int argc, char** argv) {
  long threads = bench_arg(argc, argv, "threads", 3);
  if (threads <= 0 || threads > 256) return 2;
  stress_start(argc, argv, 2);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  for (long t = 0; t < threads; t++) pthread_create(&tids[t], NULL, churn, (void*)(intptr_t)t);
  int forks = 0;
  while (stress_running()) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) _exit(child());
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork_stress: child %d failed (status %#x)\n", (int)pid, status);
      return 1;
    }
    forks++;
  }
  atomic_store(&stop, 1);
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  free(tids);
  printf("fork_stress: %d children\n", forks);
  return stress_finish("fork_stress");
}
