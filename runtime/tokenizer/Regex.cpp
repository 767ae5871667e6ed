//===- Regex.cpp - the regex subset tokenizer pre-tokenizers use ----------===//
#include "runtime/tokenizer/Regex.h"

#include <algorithm>
#include <functional>

namespace kiln::tok {

namespace {
struct CodepointRange {
  uint32_t lo, hi;
};
#include "runtime/tokenizer/UnicodeTables.inc"

template <size_t N> bool inRanges(const CodepointRange (&r)[N], uint32_t cp) {
  const CodepointRange *end = r + N;
  const CodepointRange *it =
      std::upper_bound(r, end, cp, [](uint32_t c, const CodepointRange &x) { return c < x.lo; });
  return it != r && cp <= (it - 1)->hi;
}
} // namespace

bool isLetter(uint32_t cp) { return inRanges(kLetters, cp); }
bool isNumber(uint32_t cp) { return inRanges(kNumbers, cp); }
bool isWhitespace(uint32_t cp) {
  // Unicode White_Space.
  return (cp >= 0x9 && cp <= 0xD) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::vector<uint32_t> decodeUtf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    // The well-formed sequences (Unicode Table 3-7): the length by the
    // lead byte and the range of the second byte (no overlongs, no
    // surrogates, nothing past U+10FFFF); later bytes 80..BF.
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) n = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) n = 3;
    else if (c == 0xED) n = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) n = 3;
    else if (c == 0xF0) n = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else if (c == 0xF4) n = 4, hi = 0x8F;
    uint32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    size_t k = 1;
    for (; n && k < n && i + k < s.size(); ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF))
        break;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (n && k == n) {
      out.push_back(cp);
      i += n;
    } else {
      // One U+FFFD for the longest start of a well-formed sequence (at
      // least the lead byte), as Rust's from_utf8_lossy (the tokenizers
      // library) and the WHATWG decoder substitute.
      out.push_back(0xFFFD);
      i += n ? k : 1;
    }
  }
  return out;
}

void appendUtf8(uint32_t cp, std::string &out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct Regex::Node {
  enum Kind { Alt, Concat, Repeat, Class, Any, LookAhead, Empty } kind = Empty;
  std::vector<std::unique_ptr<Node>> kids;
  // Repeat
  int min = 0, max = -1;
  bool greedy = true;
  // Class: ranges, named sets, negation, ASCII case folding
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  bool letters = false, numbers = false, space = false, notSpace = false, digits = false, word = false;
  bool negated = false, caseless = false;
  // LookAhead
  bool negative = false;

  bool matchesChar(uint32_t c) const {
    auto test = [&](uint32_t x) {
      for (auto [lo, hi] : ranges)
        if (x >= lo && x <= hi)
          return true;
      return (letters && isLetter(x)) || (numbers && isNumber(x)) || (space && isWhitespace(x)) ||
             (notSpace && !isWhitespace(x)) || (digits && x >= '0' && x <= '9') ||
             (word && (isLetter(x) || isNumber(x) || x == '_'));
    };
    bool hit = test(c);
    if (!hit && caseless && c < 128 && std::isalpha(static_cast<int>(c)))
      hit = test(static_cast<uint32_t>(std::islower(static_cast<int>(c)) ? std::toupper(static_cast<int>(c))
                                                                         : std::tolower(static_cast<int>(c))));
    return hit != negated;
  }
};

namespace {

using Node = Regex::Node;
using Ptr = std::unique_ptr<Node>;

class Parser {
public:
  Parser(std::vector<uint32_t> p) : p_(std::move(p)) {}
  Status parse(Ptr &out) {
    KILN_RETURN_IF_ERROR(alt(out, false));
    if (i_ != p_.size())
      return err("unbalanced ')'");
    return Status::ok();
  }

private:
  Status err(const std::string &what) const {
    return Status::error("regex: " + what + " at offset " + std::to_string(i_));
  }
  bool more() const { return i_ < p_.size(); }
  uint32_t peek() const { return p_[i_]; }

  Status alt(Ptr &out, bool caseless) {
    auto a = std::make_unique<Node>();
    a->kind = Node::Alt;
    while (true) {
      Ptr c;
      KILN_RETURN_IF_ERROR(concat(c, caseless));
      a->kids.push_back(std::move(c));
      if (more() && peek() == '|') {
        ++i_;
        continue;
      }
      break;
    }
    out = a->kids.size() == 1 ? std::move(a->kids[0]) : std::move(a);
    return Status::ok();
  }

  Status concat(Ptr &out, bool caseless) {
    auto c = std::make_unique<Node>();
    c->kind = Node::Concat;
    while (more() && peek() != '|' && peek() != ')') {
      Ptr atom;
      KILN_RETURN_IF_ERROR(this->atom(atom, caseless));
      KILN_RETURN_IF_ERROR(quantify(atom));
      c->kids.push_back(std::move(atom));
    }
    out = std::move(c);
    return Status::ok();
  }

  Status quantify(Ptr &atom) {
    if (!more())
      return Status::ok();
    int mn = -1, mx = -1;
    uint32_t c = peek();
    if (c == '?') mn = 0, mx = 1;
    else if (c == '*') mn = 0, mx = -1;
    else if (c == '+') mn = 1, mx = -1;
    else if (c == '{') {
      size_t save = i_;
      ++i_;
      auto num = [&](int &v) {
        bool any = false;
        v = 0;
        while (more() && peek() >= '0' && peek() <= '9') {
          v = v * 10 + static_cast<int>(peek() - '0');
          ++i_;
          any = true;
        }
        return any;
      };
      if (!num(mn)) {
        i_ = save;
        return Status::ok();
      }
      mx = mn;
      if (more() && peek() == ',') {
        ++i_;
        if (!num(mx))
          mx = -1;
      }
      if (!more() || peek() != '}')
        return err("unterminated {m,n}");
      // i_ is at '}': the common step below consumes it.
    } else {
      return Status::ok();
    }
    ++i_;
    auto r = std::make_unique<Node>();
    r->kind = Node::Repeat;
    r->min = mn;
    r->max = mx;
    if (more() && peek() == '?') {
      r->greedy = false;
      ++i_;
    } else if (more() && peek() == '+') {
      return err("possessive quantifiers are not supported");
    }
    r->kids.push_back(std::move(atom));
    atom = std::move(r);
    return Status::ok();
  }

  /// An escape inside or outside a class, into `n`.
  Status escape(Node &n) {
    if (!more())
      return err("trailing backslash");
    uint32_t c = p_[i_++];
    switch (c) {
    case 'p':
    case 'P': {
      if (!more() || peek() != '{')
        return err("\\p needs {Name}");
      std::string name;
      ++i_;
      while (more() && peek() != '}')
        name += static_cast<char>(p_[i_++]);
      if (!more())
        return err("unterminated \\p{");
      ++i_;
      if (c == 'P')
        return err("\\P{...} is not supported");
      if (name == "L" || name == "Letter")
        n.letters = true;
      else if (name == "N" || name == "Number")
        n.numbers = true;
      else
        return err("unsupported Unicode class \\p{" + name + "}");
      return Status::ok();
    }
    case 's': n.space = true; return Status::ok();
    case 'S': n.notSpace = true; return Status::ok();
    case 'd': n.digits = true; return Status::ok();
    case 'w': n.word = true; return Status::ok();
    case 'n': n.ranges.push_back({'\n', '\n'}); return Status::ok();
    case 'r': n.ranges.push_back({'\r', '\r'}); return Status::ok();
    case 't': n.ranges.push_back({'\t', '\t'}); return Status::ok();
    case 'f': n.ranges.push_back({'\f', '\f'}); return Status::ok();
    case 'v': n.ranges.push_back({'\v', '\v'}); return Status::ok();
    default:
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return err(std::string("unsupported escape \\") + static_cast<char>(c));
      n.ranges.push_back({c, c});
      return Status::ok();
    }
  }

  Status atom(Ptr &out, bool caseless) {
    uint32_t c = p_[i_];
    auto n = std::make_unique<Node>();
    n->caseless = caseless;
    if (c == '(') {
      ++i_;
      bool ci = caseless;
      if (more() && peek() == '?') {
        ++i_;
        if (!more())
          return err("unterminated group");
        uint32_t k = p_[i_++];
        if (k == ':') {
        } else if (k == 'i' && more() && peek() == ':') {
          ++i_;
          ci = true;
        } else if (k == '=' || k == '!') {
          n->kind = Node::LookAhead;
          n->negative = k == '!';
          Ptr inner;
          KILN_RETURN_IF_ERROR(alt(inner, caseless));
          if (!more() || peek() != ')')
            return err("unterminated lookahead");
          ++i_;
          n->kids.push_back(std::move(inner));
          out = std::move(n);
          return Status::ok();
        } else {
          return err("unsupported group (?" + std::string(1, static_cast<char>(k)));
        }
      }
      Ptr inner;
      KILN_RETURN_IF_ERROR(alt(inner, ci));
      if (!more() || peek() != ')')
        return err("unterminated group");
      ++i_;
      out = std::move(inner);
      return Status::ok();
    }
    ++i_;
    n->kind = Node::Class;
    if (c == '.') {
      n->kind = Node::Any;
    } else if (c == '\\') {
      KILN_RETURN_IF_ERROR(escape(*n));
    } else if (c == '[') {
      if (more() && peek() == '^') {
        n->negated = true;
        ++i_;
      }
      bool first = true;
      while (more() && (peek() != ']' || first)) {
        first = false;
        uint32_t lo = p_[i_++];
        if (lo == '\\') {
          size_t before = n->ranges.size();
          KILN_RETURN_IF_ERROR(escape(*n));
          if (n->ranges.size() == before + 1 && more() && peek() == '-' && i_ + 1 < p_.size() &&
              p_[i_ + 1] != ']') {
            lo = n->ranges.back().first;
            n->ranges.pop_back();
          } else {
            continue;
          }
        }
        uint32_t hi = lo;
        if (more() && peek() == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
          ++i_;
          hi = p_[i_++];
          if (hi == '\\') {
            Node tmp;
            KILN_RETURN_IF_ERROR(escape(tmp));
            if (tmp.ranges.size() != 1)
              return err("bad class range");
            hi = tmp.ranges[0].first;
          }
        }
        n->ranges.push_back({lo, hi});
      }
      if (!more())
        return err("unterminated class");
      ++i_;
    } else if (c == '^' || c == '$') {
      return err("anchors are not supported");
    } else if (c == ')' || c == '*' || c == '+' || c == '?') {
      return err("unexpected '" + std::string(1, static_cast<char>(c)) + "'");
    } else {
      n->ranges.push_back({c, c});
    }
    out = std::move(n);
    return Status::ok();
  }

  std::vector<uint32_t> p_;
  size_t i_ = 0;
};

using Cont = std::function<bool(size_t)>;

/// Steps left before a match attempt gives up (thread-local: Regex is shared).
thread_local int64_t budget = 0;
constexpr int64_t kBudget = 1000000;

bool matchNode(const Node &n, const std::vector<uint32_t> &t, size_t pos, const Cont &k);

bool matchSeq(const Node &n, size_t idx, const std::vector<uint32_t> &t, size_t pos, const Cont &k) {
  if (idx == n.kids.size())
    return k(pos);
  return matchNode(*n.kids[idx], t, pos, [&](size_t p) { return matchSeq(n, idx + 1, t, p, k); });
}

bool matchRepeat(const Node &n, const std::vector<uint32_t> &t, size_t pos, int count, const Cont &k) {
  bool canMore = n.max < 0 || count < n.max;
  bool canStop = count >= n.min;
  auto more = [&]() {
    return canMore && matchNode(*n.kids[0], t, pos, [&](size_t p) {
             return p != pos && matchRepeat(n, t, p, count + 1, k); // no empty iterations
           });
  };
  if (n.greedy)
    return more() || (canStop && k(pos));
  return (canStop && k(pos)) || more();
}

bool matchNode(const Node &n, const std::vector<uint32_t> &t, size_t pos, const Cont &k) {
  if (--budget < 0)
    return false;
  switch (n.kind) {
  case Node::Empty: return k(pos);
  case Node::Class: return pos < t.size() && n.matchesChar(t[pos]) && k(pos + 1);
  case Node::Any: return pos < t.size() && t[pos] != '\n' && k(pos + 1);
  case Node::Concat: return matchSeq(n, 0, t, pos, k);
  case Node::Alt:
    for (const Ptr &a : n.kids)
      if (matchNode(*a, t, pos, k))
        return true;
    return false;
  case Node::Repeat: {
    // Simple greedy loops over one-character atoms run without recursion.
    const Node &a = *n.kids[0];
    if (a.kind == Node::Class && n.greedy) {
      size_t end = pos;
      size_t limit = n.max < 0 ? t.size() : std::min(t.size(), pos + static_cast<size_t>(n.max));
      while (end < limit && a.matchesChar(t[end]))
        ++end;
      for (size_t e = end + 1; e-- > pos;) {
        if (e - pos < static_cast<size_t>(n.min))
          break;
        if (k(e))
          return true;
      }
      return false;
    }
    return matchRepeat(n, t, pos, 0, k);
  }
  case Node::LookAhead: {
    bool hit = matchNode(*n.kids[0], t, pos, [](size_t) { return true; });
    return hit != n.negative && k(pos);
  }
  }
  return false;
}

} // namespace

Regex::Regex() = default;
Regex::~Regex() = default;
Regex::Regex(Regex &&) noexcept = default;
Regex &Regex::operator=(Regex &&) noexcept = default;

Status Regex::compile(std::string_view pattern, Regex &out) {
  Parser p(decodeUtf8(pattern));
  Ptr root;
  KILN_RETURN_IF_ERROR(p.parse(root));
  out.root_ = std::move(root);
  return Status::ok();
}

Status Regex::findAll(const std::vector<uint32_t> &text, std::vector<std::pair<size_t, size_t>> &out) const {
  out.clear();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = 0;
    budget = kBudget;
    bool hit = matchNode(*root_, text, pos, [&](size_t e) {
      if (e == pos)
        return false; // skip empty matches
      end = e;
      return true;
    });
    if (budget < 0)
      return Status::error("regex: the pattern backtracks too much at code point " + std::to_string(pos));
    if (hit) {
      out.push_back({pos, end});
      pos = end;
    } else {
      ++pos;
    }
  }
  return Status::ok();
}

} // namespace kiln::tok
