// Configuration parser fuzzer: arbitrary HAKMEM_* values (and names) through hak_config_init with a
// fake getenv, and arbitrary text and bounds through hak_config_parse_int, both checked against a
// reference parser. Never reads the real environment.
//
// Input: byte 0 picks the mode.
//   byte0 % 4 == 0: hak_config_parse_int(text, lo, hi). Byte 1 picks the bounds: b % 3 == 0 the
//     bounds of field (b / 3) % fields, 1 the whole int64 range, 2 two int64s from the next 16
//     bytes (little endian). The rest of the input is the text (up to its first NUL).
//   otherwise: the rest is split into lines at '\n'. "NAME=VALUE" sets NAME; a line without '='
//     is the value of the next field in HAK_CONFIG_FIELDS order (cycling). As with environ, the
//     first definition of a name wins. Then hak_config_init runs with a getenv that sees only
//     these variables.
// Checks: getenv is asked for HAKMEM_PROFILE and each HAK_CONFIG_FIELDS name exactly once and
// for nothing else; every field ends in [min, max], equal to the reference parse of its value
// or, where that rejects the value (or it is unset), to the default of the profile named by
// HAKMEM_PROFILE (none if that is unset or unknown); hak_config_parse_int agrees with the
// reference on every value, with each field's bounds and with the whole int64 range.
//
// Reference grammar: an optional '-', one or more decimal digits, nothing else (no sign '+', no
// blanks, no suffixes), a value that fits int64 and lies in [lo, hi] (strtoll does the arithmetic).
//
// hak_config_init warns on stderr for every invalid value: the fuzz test runs with
// -close_fd_mask=2, so this driver writes its own failure messages to a copy of stderr taken in
// LLVMFuzzerInitialize.
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "hakmem/config.h"

namespace {

struct Field {
  const char* env;
  int64_t def;
  int64_t lo;
  int64_t hi;
  int64_t hak_config_t::*member;
};

const Field kFields[] = {
#define HAK_FUZZ_FIELD(field, env, def, lo, hi, doc) {env, def, lo, hi, &hak_config_t::field},
    HAK_CONFIG_FIELDS(HAK_FUZZ_FIELD)
#undef HAK_FUZZ_FIELD
};
constexpr size_t kFieldCount = sizeof kFields / sizeof kFields[0];

bool ReferenceParse(const char* text, int64_t lo, int64_t hi, int64_t* out) {
  const char* digits = text[0] == '-' ? text + 1 : text;
  if (*digits < '0' || *digits > '9') return false;
  errno = 0;
  char* end = nullptr;
  long long value = strtoll(text, &end, 10);
  if (errno == ERANGE || *end != '\0') return false;
  if (value < lo || value > hi) return false;
  *out = value;
  return true;
}

// Escapes `text` for a one-line message (at most ~80 characters of it).
std::string Printable(const char* text) {
  std::string out;
  for (size_t i = 0; text[i] != '\0' && i < 80; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += (char)c;
    } else {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

void CheckParse(const char* text, int64_t lo, int64_t hi) {
  int64_t expected = 0;
  bool expected_ok = ReferenceParse(text, lo, hi, &expected);
  const int64_t kUntouched = 0x5eed5eed5eed5eed;
  int64_t got = kUntouched;
  int ok = hak_config_parse_int(text, lo, hi, &got);
  if (ok != 0 && ok != 1) hakfuzz::Fail("config: parse_int returned %d", ok);
  if ((bool)ok != expected_ok || (ok && got != expected) || (!ok && got != kUntouched)) {
    hakfuzz::Fail(
        "config: hak_config_parse_int(\"%s\", %lld, %lld) returned %d, value %lld; reference: %s "
        "%lld",
        Printable(text).c_str(), (long long)lo, (long long)hi, ok, (long long)got,
        expected_ok ? "valid" : "invalid", (long long)expected);
  }
  if (ok && (got < lo || got > hi)) hakfuzz::Fail("config: parse_int result out of bounds");
}

void CheckParseAllBounds(const char* text) {
  for (const Field& f : kFields) CheckParse(text, f.lo, f.hi);
  CheckParse(text, INT64_MIN, INT64_MAX);
}

// The environment the fake getenv sees, and the names it was asked for.
std::vector<std::pair<std::string, std::string>>* g_env;
std::vector<std::string>* g_queries;

const char* FakeGetenv(const char* name) {
  g_queries->push_back(name);
  for (const auto& var : *g_env) {
    if (var.first == name) return var.second.c_str();
  }
  return nullptr;
}

void FuzzConfigInit(hakfuzz::Input& in) {
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> queries;
  size_t bare_values = 0;
  std::string line;
  auto add_line = [&] {
    // getenv returns C strings: a value ends at its first NUL.
    line = std::string(line.c_str());
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      env.emplace_back(kFields[bare_values++ % kFieldCount].env, line);
    } else {
      env.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
    line.clear();
  };
  while (!in.empty()) {
    char c = (char)in.Byte();
    if (c == '\n') {
      add_line();
    } else {
      line += c;
    }
  }
  if (!line.empty()) add_line();

  g_env = &env;
  g_queries = &queries;
  // Poison the struct first: every field must be assigned.
  memset(&hak_config, 0xa5, sizeof hak_config);
  hak_config_init(FakeGetenv);
  g_env = nullptr;
  g_queries = nullptr;

  auto value_of = [&](const char* name) -> const char* {
    for (const auto& var : env) {
      if (var.first == name) return var.second.c_str();
    }
    return nullptr;
  };
  // A renamed variable's old name is asked for only when its new name is unset, and then once.
  std::vector<std::string> current;
  for (const std::string& q : queries) {
    const char* renamed_to = hak_config_new_name(q.c_str());
    if (renamed_to == nullptr) {
      current.push_back(q);
    } else if (value_of(renamed_to) != nullptr) {
      hakfuzz::Fail("config: getenv(%s) although %s is set", q.c_str(), renamed_to);
    }
  }
  if (current.size() != kFieldCount + 1) {
    hakfuzz::Fail("config: getenv called %zu times for %zu fields and the profile",
                  current.size(), kFieldCount);
  }
  std::vector<std::string> names = {HAK_PROFILE_ENV};
  for (const Field& f : kFields) names.push_back(f.env);
  for (const std::string& name : names) {
    size_t count = 0;
    for (const std::string& q : queries) count += q == name;
    if (count != 1) hakfuzz::Fail("config: getenv(%s) called %zu times", name.c_str(), count);
  }
  // The value a field takes: under its name, else under the name it had.
  auto field_value = [&](const char* name) -> const char* {
    if (const char* value = value_of(name)) return value;
    for (const std::string& q : queries) {
      const char* renamed_to = hak_config_new_name(q.c_str());
      if (renamed_to != nullptr && strcmp(renamed_to, name) == 0) return value_of(q.c_str());
    }
    return nullptr;
  };
  int profile = hak_config_profile_parse(value_of(HAK_PROFILE_ENV));
  if (profile < 0) profile = HAK_PROFILE_NONE;
  if (hak_config.profile != profile) {
    hakfuzz::Fail("config: profile %d, expected %d", hak_config.profile, profile);
  }
  for (const Field& f : kFields) {
    const char* value = field_value(f.env);
    const hak_config_var_t* var = hak_config_find(f.env, nullptr);
    if (var == nullptr) hakfuzz::Fail("config: %s missing from hak_config_vars", f.env);
    int64_t def = hak_config_profile_default(profile, var);
    if (def < f.lo || def > f.hi) hakfuzz::Fail("config: %s profile default out of range", f.env);
    int64_t expected = def;
    if (value != nullptr && !ReferenceParse(value, f.lo, f.hi, &expected)) expected = def;
    int64_t got = hak_config.*f.member;
    if (got < f.lo || got > f.hi) {
      hakfuzz::Fail("config: %s=\"%s\" gave %lld, outside [%lld, %lld]", f.env,
                    value ? Printable(value).c_str() : "(unset)", (long long)got, (long long)f.lo,
                    (long long)f.hi);
    }
    if (got != expected) {
      hakfuzz::Fail("config: %s=\"%s\" gave %lld; reference %lld", f.env,
                    value ? Printable(value).c_str() : "(unset)", (long long)got,
                    (long long)expected);
    }
  }
  for (const auto& var : env) CheckParseAllBounds(var.second.c_str());
}

void FuzzParseInt(hakfuzz::Input& in) {
  uint8_t b = in.Byte();
  int64_t lo = INT64_MIN;
  int64_t hi = INT64_MAX;
  if (b % 3 == 0) {
    lo = kFields[(b / 3) % kFieldCount].lo;
    hi = kFields[(b / 3) % kFieldCount].hi;
  } else if (b % 3 == 2) {
    lo = (int64_t)in.U64();
    hi = (int64_t)in.U64();
  }
  std::string text(reinterpret_cast<const char*>(in.data()), in.remaining());
  CheckParse(text.c_str(), lo, hi);
  CheckParseAllBounds(text.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  int fd = dup(STDERR_FILENO);
  if (fd >= 0) hakfuzz::ReportFd() = fd;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hakfuzz::Input in(data, size);
  if (in.Byte() % 4 == 0) {
    FuzzParseInt(in);
  } else {
    FuzzConfigInit(in);
  }
  return 0;
}
