// The HAKMEM_* table: every variable with good, bad and out-of-range values, profiles, unknown
// names. Each invalid value must give exactly one warning line and the default.
#include "hakmem/config.h"

#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <map>
#include <string>

namespace {

std::map<std::string, std::string>* g_env;

const char* FakeGetenv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

// Runs hak_config_init over `env`; returns what it wrote on stderr.
std::string Init(std::map<std::string, std::string> env, int* invalid = nullptr) {
  g_env = &env;
  testing::internal::CaptureStderr();
  int n = hak_config_init(FakeGetenv);
  std::string err = testing::internal::GetCapturedStderr();
  if (invalid) *invalid = n;
  g_env = nullptr;
  return err;
}

int64_t Value(const hak_config_var_t& var) {
  return *reinterpret_cast<const int64_t*>(reinterpret_cast<const char*>(&hak_config) + var.offset);
}

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class EveryVariable : public testing::TestWithParam<size_t> {
 protected:
  const hak_config_var_t& var() const { return hak_config_vars[GetParam()]; }
};

TEST_P(EveryVariable, UnsetGivesTheDefault) {
  EXPECT_EQ(Init({}), "");
  EXPECT_EQ(Value(var()), var().def);
  EXPECT_GE(var().def, var().min);
  EXPECT_LE(var().def, var().max);
}

TEST_P(EveryVariable, GoodValuesAreTaken) {
  for (int64_t v : {var().min, var().max, (var().min + var().max) / 2}) {
    int invalid = -1;
    EXPECT_EQ(Init({{var().name, std::to_string(v)}}, &invalid), "");
    EXPECT_EQ(invalid, 0);
    EXPECT_EQ(Value(var()), v) << var().name;
  }
}

TEST_P(EveryVariable, BadValuesWarnOnceAndKeepTheDefault) {
  const std::string bad[] = {"", "abc", "12x", "1.5", " 1", "+1", std::to_string(var().min - 1),
                             std::to_string(var().max) + "0"};
  for (const std::string& text : bad) {
    int invalid = -1;
    std::string err = Init({{var().name, text}}, &invalid);
    EXPECT_EQ(invalid, 1) << var().name << "=" << text;
    EXPECT_EQ(Lines(err), 1) << err;
    EXPECT_NE(err.find(std::string("hakmem: invalid ") + var().name + "=\"" + text + "\""),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("using " + std::to_string(var().def)), std::string::npos) << err;
    EXPECT_EQ(Value(var()), var().def);
  }
}

INSTANTIATE_TEST_SUITE_P(Config, EveryVariable, testing::Range<size_t>(0, hak_config_var_count),
                         [](const testing::TestParamInfo<size_t>& param) {
                           return std::string(hak_config_vars[param.param].name);
                         });

const hak_config_var_t& Var(const char* name) {
  const hak_config_var_t* var = hak_config_find(name, nullptr);
  EXPECT_NE(var, nullptr) << name;
  return *var;
}

TEST(Config, ProfileSetsDefaultsAndExplicitValuesWin) {
  EXPECT_EQ(Init({{"HAKMEM_PROFILE", "low-memory"}}), "");
  EXPECT_EQ(hak_config.profile, HAK_PROFILE_LOW_MEMORY);
  EXPECT_EQ(hak_config.purge_delay_ms, 20);
  EXPECT_EQ(hak_config.segment_cache, 0);
  EXPECT_EQ(hak_config.check_frees, Var("HAKMEM_CHECK_FREES").def) << "left alone by the profile";
  EXPECT_EQ(hak_config.mid_cache_kb, Var("HAKMEM_MID_CACHE_KB").def)
      << "smaller mid caches raise peak RSS: not for the low-memory profile";

  EXPECT_EQ(Init({{"HAKMEM_PROFILE", "low-memory"}, {"HAKMEM_PURGE_DELAY_MS", "7"}}), "");
  EXPECT_EQ(hak_config.purge_delay_ms, 7);

  // A bad explicit value falls back to the profile's default, and says so.
  std::string err = Init({{"HAKMEM_PROFILE", "throughput"}, {"HAKMEM_PURGE_DELAY_MS", "soon"}});
  EXPECT_NE(err.find("using 1000"), std::string::npos) << err;
  EXPECT_EQ(hak_config.purge_delay_ms, 1000);

  EXPECT_EQ(Init({{"HAKMEM_PROFILE", "debug"}}), "");
  EXPECT_EQ(hak_config.stats, 1);
}

TEST(Config, EveryProfileNameParsesAndStaysInRange) {
  for (int p = 1; p < HAK_PROFILE_COUNT; p++) {
    EXPECT_EQ(hak_config_profile_parse(hak_config_profile_name(p)), p);
    for (size_t i = 0; i < hak_config_var_count; i++) {
      const hak_config_var_t& var = hak_config_vars[i];
      int64_t def = hak_config_profile_default(p, &var);
      EXPECT_GE(def, var.min) << var.name;
      EXPECT_LE(def, var.max) << var.name;
    }
  }
  EXPECT_EQ(hak_config_profile_parse("fast"), -1);
}

TEST(Config, UnknownProfileWarnsOnceAndUsesNone) {
  int invalid = -1;
  std::string err = Init({{"HAKMEM_PROFILE", "fast"}}, &invalid);
  EXPECT_EQ(invalid, 1);
  EXPECT_EQ(Lines(err), 1) << err;
  EXPECT_NE(err.find("hakmem: invalid HAKMEM_PROFILE=\"fast\""), std::string::npos) << err;
  EXPECT_EQ(hak_config.profile, HAK_PROFILE_NONE);
  EXPECT_EQ(hak_config.purge_delay_ms, Var("HAKMEM_PURGE_DELAY_MS").def);
}

TEST(Config, UnknownNamesWarnWithTheClosestKnownName) {
  const char* env[] = {"HAKMEM_PURGE_DELAY=5", "HAKMEM_STATS=1", "HAKMEM_PROFILE=debug",
                       "PATH=/bin", "HAKMEM_STAT=1", "HAKMEM_PROFILES=x", nullptr};
  testing::internal::CaptureStderr();
  EXPECT_EQ(hak_config_warn_unknown(env), 3);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(Lines(err), 3) << err;
  EXPECT_NE(err.find("hakmem: unknown variable HAKMEM_PURGE_DELAY ignored (did you mean "
                     "HAKMEM_PURGE_DELAY_MS?)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("unknown variable HAKMEM_STAT ignored (did you mean HAKMEM_STATS?)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("unknown variable HAKMEM_PROFILES ignored (did you mean HAKMEM_PROFILE?)"),
            std::string::npos)
      << err;
}

TEST(Config, ARenamedVariableStillWorksUnderItsOldNameWithOneWarning) {
  int invalid = -1;
  std::string err = Init({{"HAKMEM_MID_WMAX_PCT", "125"}}, &invalid);
  EXPECT_EQ(invalid, 0);
  EXPECT_EQ(Lines(err), 1) << err;
  EXPECT_NE(err.find("hakmem: HAKMEM_MID_WMAX_PCT is now called HAKMEM_MID_ROUND_PCT"),
            std::string::npos)
      << err;
  EXPECT_EQ(hak_config.mid_round_pct, 125);
  // The new name wins, silently.
  err = Init({{"HAKMEM_MID_WMAX_PCT", "125"}, {"HAKMEM_MID_ROUND_PCT", "150"}}, &invalid);
  EXPECT_EQ(Lines(err), 0) << err;
  EXPECT_EQ(hak_config.mid_round_pct, 150);
  // Not reported again as unknown.
  const char* env[] = {"HAKMEM_ACE_DYN1_PCT=10", nullptr};
  testing::internal::CaptureStderr();
  EXPECT_EQ(hak_config_warn_unknown(env), 0);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_STREQ(hak_config_new_name("HAKMEM_ACE_DYN1_PCT"), "HAKMEM_ACE_EXTRA_CLASS_PCT");
  EXPECT_EQ(hak_config_new_name("HAKMEM_STATS"), nullptr);
}

TEST(Config, NamesAreUniqueAndDocumented) {
  for (size_t i = 0; i < hak_config_var_count; i++) {
    EXPECT_EQ(hak_config_find(hak_config_vars[i].name, nullptr), &hak_config_vars[i]);
    EXPECT_GT(strlen(hak_config_vars[i].doc), 20u) << hak_config_vars[i].name;
  }
}

}  // namespace
