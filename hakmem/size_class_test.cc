#include "hakmem/size_class.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

TEST(SizeClass, TableIsSortedAndAligned) {
  for (unsigned c = 1; c < HAK_REGULAR_CLASSES; c++) {
    EXPECT_LT(hak_class_size(c - 1), hak_class_size(c)) << c;
    EXPECT_EQ(hak_class_size(c) % 16, 0u) << c;
  }
  EXPECT_EQ(hak_class_size(HAK_TINY_CLASSES - 1), HAK_TINY_MAX);
  EXPECT_EQ(hak_class_size(HAK_REGULAR_CLASSES - 1), HAK_MID_MAX);
  EXPECT_EQ(hak_class_size(HAK_EXTRA_CLASS), 0u) << "not placed yet";
}

TEST(SizeClass, EverySizeGetsTheSmallestFittingClassWithBoundedWaste) {
  for (size_t n = 0; n <= HAK_MID_MAX; n++) {
    unsigned c = hak_size_class(n);
    ASSERT_LT(c, (unsigned)HAK_CLASS_COUNT) << n;
    ASSERT_GE(hak_class_size(c), n) << n;
    if (c > 0) {
      ASSERT_LT(hak_class_size(c - 1), n) << "not the smallest class for " << n;
    }
    size_t waste = hak_class_size(c) - n;
    size_t bound = n / 8 > 15 ? n / 8 : 15;
    if (n > 0) {
      ASSERT_LE(waste, bound) << n;
    }
    ASSERT_EQ(c < (unsigned)HAK_TINY_CLASSES, n <= HAK_TINY_MAX) << n;
  }
}

// Placing the extra class changes the process's tables for good: it runs in a child process.
void PlaceAndCheckExtraClass() {
  auto fail = [](const char* what, size_t n) {
    fprintf(stderr, "FAILED: %s (%zu)\n", what, n);
    _exit(1);
  };
  if (hak_size_class_extra_fits(1000)) fail("tiny size fits", 1000);
  if (hak_size_class_extra_fits(4800)) fail("not a multiple of 128 fits", 4800);
  if (hak_size_class_extra_fits(5120)) fail("a regular class fits", 5120);
  if (hak_size_class_extra_fits(HAK_MID_MAX + 128)) fail("too large fits", HAK_MID_MAX + 128);
  if (!hak_size_class_extra_fits(4864)) fail("4864 does not fit", 4864);
  if (hak_size_class(4700) != hak_size_class(5120)) fail("4700 not in 5120's class before", 4700);
  if (!hak_size_class_place_extra(4864)) fail("placing", 4864);
  if (hak_size_class_place_extra(9984)) fail("placed twice", 9984);
  if (hak_class_size(HAK_EXTRA_CLASS) != 4864) fail("extra size", hak_class_size(HAK_EXTRA_CLASS));
  for (size_t n = HAK_TINY_MAX + 1; n <= HAK_MID_MAX; n++) {
    unsigned c = hak_size_class(n);
    if (hak_class_size(c) < n) fail("class too small", n);
    bool extra = n > 4608 && n <= 4864;  // above the regular class below, up to the extra size
    if ((c == HAK_EXTRA_CLASS) != extra) fail("wrong class", n);
  }
  _exit(0);
}

TEST(SizeClassDeathTest, ExtraClassTakesTheSizesItFitsBetter) {
  EXPECT_EXIT(PlaceAndCheckExtraClass(), testing::ExitedWithCode(0), "");
}
