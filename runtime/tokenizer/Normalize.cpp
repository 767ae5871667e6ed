//===- Normalize.cpp - Unicode canonical composition (NFC) ----------------===//
#include "runtime/tokenizer/Normalize.h"

#include "runtime/tokenizer/Regex.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace kiln::tok {

namespace {

struct CombiningClassRange {
  uint32_t lo, hi;
  uint8_t ccc;
};
struct Decomposition {
  uint32_t cp, first, second; // second 0: a singleton
};
struct Composition {
  uint32_t first, second, composite;
};

#include "runtime/tokenizer/NormalizationTables.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

int combiningClass(uint32_t cp) {
  const auto *end = std::end(kCombiningClasses);
  const auto *it = std::upper_bound(std::begin(kCombiningClasses), end, cp,
                                    [](uint32_t c, const CombiningClassRange &r) { return c < r.lo; });
  if (it == std::begin(kCombiningClasses))
    return 0;
  --it;
  return cp <= it->hi ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t> &out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount)
      out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto *end = std::end(kDecompositions);
  const auto *it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                    [](const Decomposition &d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second)
    decompose(it->second, out);
}

/// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto *end = std::end(kCompositions);
  const auto *it = std::lower_bound(std::begin(kCompositions), end, std::make_pair(a, b),
                                    [](const Composition &c, const std::pair<uint32_t, uint32_t> &k) {
                                      return c.first != k.first ? c.first < k.first : c.second < k.second;
                                    });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

/// Decodes one UTF-8 sequence at s[i]; false (and nothing consumed) when it
/// is not valid.
bool decode(const std::string &s, size_t &i, uint32_t &cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (!n || i + static_cast<size_t>(n) > s.size())
    return false;
  cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (int k = 1; k < n; ++k) {
    if ((b(i + static_cast<size_t>(k)) & 0xC0) != 0x80)
      return false;
    cp = (cp << 6) | (b(i + static_cast<size_t>(k)) & 0x3F);
  }
  static const uint32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < minimum[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return false;
  i += static_cast<size_t>(n);
  return true;
}

/// NFC of a run of code points, appended to `out` as UTF-8.
void normalizeRun(std::vector<uint32_t> &cps, std::string &out) {
  std::vector<uint32_t> d;
  for (uint32_t cp : cps)
    decompose(cp, d);
  // Canonical ordering: stable sort of each run of non-starters by class.
  for (size_t i = 0; i < d.size();) {
    if (!combiningClass(d[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && combiningClass(d[j]))
      ++j;
    std::stable_sort(d.begin() + static_cast<long>(i), d.begin() + static_cast<long>(j),
                     [](uint32_t a, uint32_t b) { return combiningClass(a) < combiningClass(b); });
    i = j;
  }
  // Canonical composition.
  std::vector<uint32_t> r;
  long starter = -1;
  int last = -1; // class of the last character kept after the starter
  for (uint32_t c : d) {
    int cc = combiningClass(c);
    if (starter >= 0 && (last < cc || (last == -1 && cc == 0)) ) {
      // Not blocked from the starter (last == -1: adjacent to it).
      if (uint32_t p = compose(r[static_cast<size_t>(starter)], c)) {
        r[static_cast<size_t>(starter)] = p;
        continue;
      }
    }
    if (cc == 0) {
      starter = static_cast<long>(r.size());
      last = -1;
    } else {
      last = cc;
    }
    r.push_back(c);
  }
  for (uint32_t c : r)
    appendUtf8(c, out);
  cps.clear();
}

} // namespace

std::string toNfc(const std::string &s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return s;
  std::string out;
  out.reserve(s.size());
  std::vector<uint32_t> run;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    if (decode(s, i, cp)) {
      run.push_back(cp);
      continue;
    }
    normalizeRun(run, out);
    out += s[i++];
  }
  normalizeRun(run, out);
  return out;
}

} // namespace kiln::tok
