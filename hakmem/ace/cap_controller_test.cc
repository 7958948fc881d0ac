// The capacity controller on synthetic traces: it converges into the band, stays there, never
// oscillates where no cap fits the band, and searches again after a sustained change.
#include "hakmem/ace/cap_controller.h"

#include <gtest/gtest.h>

#include <functional>

namespace {

// Runs `windows` observations with the hit rate `hit(cap)`; returns how often the cap changed in
// the last `tail` windows, and counts in *reversals the moves against the previous move.
int Observe(hak_cap_controller_t* c, const std::function<double(uint32_t)>& hit, int windows,
            int tail, int* reversals = nullptr) {
  int changes = 0, last_move = 0;
  for (int i = 0; i < windows; i++) {
    uint32_t before = c->cap;
    hak_cap_controller_observe(c, hit(c->cap));
    if (c->cap == before) continue;
    int move = c->cap > before ? 1 : -1;
    if (reversals != nullptr && last_move != 0 && move != last_move) (*reversals)++;
    last_move = move;
    if (i >= windows - tail) changes++;
  }
  return changes;
}

double Linear(uint32_t cap, double full) { return cap >= full ? 1.0 : cap / full; }

TEST(CapController, ConvergesIntoTheBandAndStays) {
  hak_cap_controller_t c;
  hak_cap_controller_init(&c, 8, 4, 1024, 32, 2, 0.90, 0.95);
  int reversals = 0;
  int late_changes =
      Observe(&c, [](uint32_t cap) { return Linear(cap, 100.0); }, 400, 200, &reversals);
  EXPECT_GE(c.cap, 90u);
  EXPECT_LE(c.cap, 95u);
  EXPECT_EQ(late_changes, 0);
  EXPECT_GE(reversals, 1) << "it overshoots with a step of 32, then comes back";
  EXPECT_LE(reversals, 6) << "the step halves on every reversal: log2(32) + 1";
}

TEST(CapController, NeverOscillatesWhereNoCapFitsTheBand) {
  hak_cap_controller_t c;
  // cap 5 gives 0.50 (below), cap 6 gives 0.60 (above): no cap is inside [0.52, 0.58].
  hak_cap_controller_init(&c, 1, 1, 64, 4, 1, 0.52, 0.58);
  int late_changes = Observe(&c, [](uint32_t cap) { return cap / 10.0; }, 300, 200);
  EXPECT_EQ(late_changes, 0);
  EXPECT_EQ(c.cap, 6u) << "the cap with more hits";
}

TEST(CapController, SearchesAgainAfterASustainedChange) {
  hak_cap_controller_t c;
  hak_cap_controller_init(&c, 8, 4, 1024, 32, 2, 0.90, 0.95);
  Observe(&c, [](uint32_t cap) { return Linear(cap, 100.0); }, 400, 0);
  ASSERT_GE(c.cap, 90u);
  // The working set halves: the same hit rates at half the cap. A window or two outside the
  // band is noise; hundreds are a new workload.
  int late_changes = Observe(&c, [](uint32_t cap) { return Linear(cap, 50.0); }, 600, 200);
  EXPECT_GE(c.cap, 45u);
  EXPECT_LE(c.cap, 48u);
  EXPECT_EQ(late_changes, 0);
}

TEST(CapController, HonoursItsBoundsAndDwell) {
  hak_cap_controller_t c;
  hak_cap_controller_init(&c, 10, 8, 12, 5, 3, 0.9, 0.95);
  EXPECT_EQ(hak_cap_controller_observe(&c, 0.0), 12u) << "one step, clamped to max";
  for (int i = 0; i < 3; i++) EXPECT_EQ(hak_cap_controller_observe(&c, 1.0), 12u) << "dwell";
  EXPECT_EQ(hak_cap_controller_observe(&c, 1.0), 10u) << "a reversal halves the step";
  for (int i = 0; i < 50; i++) hak_cap_controller_observe(&c, 1.0);
  EXPECT_EQ(c.cap, 8u) << "clamped to min";
}

}  // namespace
