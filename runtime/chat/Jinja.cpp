//===- Jinja.cpp - Jinja templates parsed, and the API ---------------------===//
//
// The source cut into text and tags (with Jinja's whitespace rules), tags
// parsed by recursive descent into JinjaDetail.h's statement and expression
// trees (Jinja2's own precedence: parser.py's parse_or ... parse_unary);
// Value's members and the entry points. JinjaValue.cpp and JinjaRender.cpp
// hold the rest.
//
//===----------------------------------------------------------------------===//
#include "runtime/chat/Jinja.h"

#include "runtime/chat/JinjaDetail.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace kiln::jinja {
namespace detail {

namespace {
// The bytes strip removes: whitespace, or those of `chars` (a table, so a
// long `chars` costs its length once, not once a byte of the text).
std::array<bool, 256> stripped(const std::string &chars) {
  std::array<bool, 256> t{};
  if (chars.empty())
    for (int c = 0; c < 256; ++c)
      t[static_cast<size_t>(c)] = isSpace(static_cast<char>(c));
  for (unsigned char c : chars)
    t[c] = true;
  return t;
}
} // namespace

std::string lstrip(const std::string &s, const std::string &chars) {
  const std::array<bool, 256> t = stripped(chars);
  size_t i = 0;
  while (i < s.size() && t[static_cast<unsigned char>(s[i])])
    ++i;
  return s.substr(i);
}

std::string rstrip(const std::string &s, const std::string &chars) {
  const std::array<bool, 256> t = stripped(chars);
  size_t n = s.size();
  while (n > 0 && t[static_cast<unsigned char>(s[n - 1])])
    --n;
  return s.substr(0, n);
}

const std::vector<std::string> &filterNames() {
  static const std::vector<std::string> n = {
      "abs",   "capitalize", "count",      "d",       "default", "dictsort", "first",  "float",
      "indent", "int",       "items",      "join",    "last",    "length",   "list",   "lower",
      "map",   "max",        "min",        "reject",  "rejectattr", "replace", "reverse", "round",
      "safe",  "select",     "selectattr", "sort",    "string",  "sum",      "title",  "tojson",
      "trim",  "unique",     "upper",      "wordcount"};
  return n;
}
const std::vector<std::string> &testNames() {
  static const std::vector<std::string> n = {
      "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "even", "false", "float", "ge",
      "gt", "in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none", "number", "odd",
      "sameas", "sequence", "string", "true", "undefined", "upper"};
  return n;
}

namespace {

// ---- the source cut into text and tags -------------------------------------

struct Segment {
  enum Kind { Text, Expr, Block } kind;
  std::string text;
  int line;
};

std::vector<Segment> segments(const std::string &src) {
  std::vector<Segment> out;
  size_t pos = 0;
  int line = 1;
  bool stripNext = false; // the previous tag ended with '-'
  auto countLines = [&](size_t from, size_t to) {
    for (size_t i = from; i < to && i < src.size(); ++i)
      line += src[i] == '\n';
  };
  while (pos <= src.size()) {
    size_t t = pos;
    while (t + 1 < src.size() && !(src[t] == '{' && (src[t + 1] == '{' || src[t + 1] == '%' || src[t + 1] == '#')))
      ++t;
    bool tag = t + 1 < src.size();
    std::string text = src.substr(pos, tag ? t - pos : std::string::npos);
    const bool lineStarting = pos == 0 || src[pos - 1] == '\n';
    if (stripNext)
      text = lstrip(text);
    char kind = tag ? src[t + 1] : 0, mod = tag && t + 2 < src.size() ? src[t + 2] : 0;
    if (tag && mod == '-') {
      text = rstrip(text);
    } else if (tag && (kind == '%' || kind == '#') && mod != '+') {
      // lstrip_blocks: a block tag alone on its line takes the line's
      // leading whitespace with it.
      size_t l = text.rfind('\n');
      l = l == std::string::npos ? 0 : l + 1;
      if ((l > 0 || lineStarting) &&
          std::all_of(text.begin() + static_cast<long>(l), text.end(), [](char c) { return isSpace(c); }))
        text.resize(l);
    }
    if (!text.empty())
      out.push_back({Segment::Text, text, line});
    if (!tag)
      break;
    countLines(pos, t);
    const int tagLine = line;
    size_t body = t + 2 + (mod == '-' || mod == '+' ? 1 : 0), end = body;
    const char closer = kind == '{' ? '}' : kind;
    if (kind == '#') {
      end = src.find("#}", body);
    } else {
      char quote = 0;
      for (; end + 1 < src.size(); ++end) {
        char c = src[end];
        if (quote) {
          if (c == '\\')
            ++end;
          else if (c == quote)
            quote = 0;
        } else if (c == '\'' || c == '"') {
          quote = c;
        } else if (c == closer && src[end + 1] == '}') {
          break;
        }
      }
      if (end + 1 >= src.size())
        end = std::string::npos;
    }
    if (end == std::string::npos)
      failAt(tagLine, std::string("unclosed '{") + kind + "'");
    std::string inner = src.substr(body, end - body);
    char rmod = !inner.empty() && (inner.back() == '-' || inner.back() == '+') ? inner.back() : 0;
    if (rmod)
      inner.pop_back();
    stripNext = rmod == '-';
    pos = end + 2;
    countLines(body, pos);
    // trim_blocks: the newline after a block tag goes with it.
    if ((kind == '%' || kind == '#') && rmod != '+' && !stripNext) {
      if (pos < src.size() && src[pos] == '\n')
        ++pos, ++line;
      else if (pos + 1 < src.size() && src[pos] == '\r' && src[pos + 1] == '\n')
        pos += 2, ++line;
    }
    if (kind == '#')
      continue;
    if (kind == '%' && rstrip(lstrip(inner)) == "raw") {
      // Everything up to {% endraw %} is text.
      size_t at = pos;
      for (;;) {
        size_t e = src.find("{%", at);
        if (e == std::string::npos)
          failAt(tagLine, "'raw' without 'endraw'");
        size_t c = src.find("%}", e);
        if (c == std::string::npos)
          failAt(tagLine, "'raw' without 'endraw'");
        std::string w = src.substr(e + 2, c - e - 2);
        bool lm = !w.empty() && w.front() == '-', rm = !w.empty() && w.back() == '-';
        if (rstrip(lstrip(w.substr(lm, w.size() - lm - rm))) == "endraw") {
          std::string raw = src.substr(pos, e - pos);
          if (lm)
            raw = rstrip(raw);
          if (!raw.empty())
            out.push_back({Segment::Text, raw, line});
          countLines(pos, c + 2);
          pos = c + 2;
          stripNext = rm;
          break;
        }
        at = c + 2;
      }
      continue;
    }
    out.push_back({kind == '{' ? Segment::Expr : Segment::Block, inner, tagLine});
  }
  return out;
}

// ---- tokens of an expression -----------------------------------------------

struct Tok {
  enum Kind { Name, Int, Float, Str, Op, End } kind = End;
  std::string s;
  int64_t i = 0;
  double f = 0;
};

std::vector<Tok> tokens(const std::string &src, int line) {
  std::vector<Tok> out;
  size_t p = 0;
  static const char *ops2[] = {"**", "//", "==", "!=", "<=", ">="};
  while (p < src.size()) {
    char c = src[p];
    if (isSpace(c)) {
      ++p;
      continue;
    }
    Tok t;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t q = p;
      while (q < src.size() && (std::isalnum(static_cast<unsigned char>(src[q])) || src[q] == '_'))
        ++q;
      t.kind = Tok::Name, t.s = src.substr(p, q - p), p = q;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t q = p;
      bool fl = false;
      while (q < src.size() && (std::isdigit(static_cast<unsigned char>(src[q])) || src[q] == '_'))
        ++q;
      if (q + 1 < src.size() && src[q] == '.' && std::isdigit(static_cast<unsigned char>(src[q + 1]))) {
        fl = true, ++q;
        while (q < src.size() && std::isdigit(static_cast<unsigned char>(src[q])))
          ++q;
      }
      if (q < src.size() && (src[q] == 'e' || src[q] == 'E')) {
        size_t r = q + 1;
        if (r < src.size() && (src[r] == '+' || src[r] == '-'))
          ++r;
        if (r < src.size() && std::isdigit(static_cast<unsigned char>(src[r]))) {
          fl = true, q = r;
          while (q < src.size() && std::isdigit(static_cast<unsigned char>(src[q])))
            ++q;
        }
      }
      std::string num;
      for (size_t i = p; i < q; ++i)
        if (src[i] != '_')
          num += src[i];
      if (fl) {
        t.kind = Tok::Float, t.f = std::strtod(num.c_str(), nullptr);
      } else {
        errno = 0;
        t.kind = Tok::Int, t.i = std::strtoll(num.c_str(), nullptr, 10);
        if (errno)
          failAt(line, "integer literal out of range: " + num);
      }
      p = q;
    } else if (c == '\'' || c == '"') {
      size_t q = p + 1;
      std::string s;
      for (; q < src.size() && src[q] != c; ++q) {
        if (src[q] == '\\' && q + 1 < src.size()) {
          char e = src[++q];
          switch (e) {
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case 'r': s += '\r'; break;
          case '\\': s += '\\'; break;
          case '\'': s += '\''; break;
          case '"': s += '"'; break;
          default: s += '\\', s += e;
          }
        } else {
          s += src[q];
        }
      }
      if (q >= src.size())
        failAt(line, "unterminated string literal");
      t.kind = Tok::Str, t.s = s, p = q + 1;
    } else {
      t.kind = Tok::Op;
      for (const char *o : ops2)
        if (src.compare(p, 2, o) == 0)
          t.s = o;
      if (t.s.empty()) {
        if (!std::strchr("+-*/%~<>()[]{},.:|=", c))
          failAt(line, std::string("unexpected character '") + c + "'");
        t.s = std::string(1, c);
      }
      p += t.s.size();
    }
    out.push_back(std::move(t));
  }
  out.push_back(Tok{});
  return out;
}

// ---- parsing --------------------------------------------------------------

class ExprParser {
public:
  ExprParser(std::vector<Tok> toks, int line) : t_(std::move(toks)), line_(line) {}

  const Tok &peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  bool atEnd() const { return peek().kind == Tok::End; }
  bool isOp(const char *o, size_t k = 0) const { return peek(k).kind == Tok::Op && peek(k).s == o; }
  bool isName(const char *n, size_t k = 0) const { return peek(k).kind == Tok::Name && peek(k).s == n; }
  Tok next() { return t_[std::min(i_++, t_.size() - 1)]; }
  void expectOp(const char *o) {
    if (!isOp(o))
      fail(std::string("expected '") + o + "'");
    ++i_;
  }
  std::string expectName() {
    if (peek().kind != Tok::Name)
      fail("expected a name");
    return next().s;
  }
  [[noreturn]] void fail(const std::string &m) const {
    const Tok &t = peek();
    failAt(line_, m + (t.kind == Tok::End ? " at the end of the tag" : " near '" + describe(t) + "'"));
  }
  static std::string describe(const Tok &t) {
    switch (t.kind) {
    case Tok::Int: return std::to_string(t.i);
    case Tok::Float: return std::to_string(t.f);
    case Tok::Str: return "'" + t.s + "'";
    default: return t.s;
    }
  }
  void expectEnd() {
    if (!atEnd())
      fail("unexpected token");
  }

  ExprP make(Expr::Op op) {
    auto e = std::make_unique<Expr>();
    e->op = op;
    e->line = line_;
    return e;
  }

  ExprP expr() {
    Guard g(*this);
    ExprP e = orExpr();
    if (isName("if")) {
      ++i_;
      ExprP c = make(Expr::Cond);
      ExprP cond = orExpr();
      ExprP other;
      if (isName("else")) {
        ++i_;
        other = expr();
      } else {
        other = make(Expr::Lit); // undefined
      }
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      return c;
    }
    return e;
  }
  ExprP orExpr() {
    ExprP e = andExpr();
    while (isName("or")) {
      ++i_;
      ExprP o = make(Expr::Or);
      o->args.push_back(std::move(e));
      o->args.push_back(andExpr());
      e = std::move(o);
    }
    return e;
  }
  ExprP andExpr() {
    ExprP e = notExpr();
    while (isName("and")) {
      ++i_;
      ExprP o = make(Expr::And);
      o->args.push_back(std::move(e));
      o->args.push_back(notExpr());
      e = std::move(o);
    }
    return e;
  }
  ExprP notExpr() {
    if (isName("not")) {
      Guard g(*this);
      ++i_;
      ExprP n = make(Expr::Not);
      n->args.push_back(notExpr());
      return n;
    }
    return compare();
  }
  ExprP binary(const std::string &op, ExprP l, ExprP r) {
    ExprP b = make(Expr::Bin);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return b;
  }
  ExprP compare() {
    ExprP e = math1();
    for (;;) {
      const Tok &t = peek();
      if (t.kind == Tok::Op && (t.s == "==" || t.s == "!=" || t.s == "<" || t.s == ">" || t.s == "<=" || t.s == ">=")) {
        std::string op = next().s;
        e = binary(op, std::move(e), math1());
      } else if (isName("in")) {
        ++i_;
        e = binary("in", std::move(e), math1());
      } else if (isName("not") && isName("in", 1)) {
        i_ += 2;
        e = binary("not in", std::move(e), math1());
      } else {
        return e;
      }
    }
  }
  ExprP math1() {
    ExprP e = concat();
    while (isOp("+") || isOp("-")) {
      std::string op = next().s;
      e = binary(op, std::move(e), concat());
    }
    return e;
  }
  ExprP concat() {
    ExprP e = math2();
    while (isOp("~")) {
      ++i_;
      e = binary("~", std::move(e), math2());
    }
    return e;
  }
  ExprP math2() {
    ExprP e = pow();
    while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
      std::string op = next().s;
      e = binary(op, std::move(e), pow());
    }
    return e;
  }
  ExprP pow() {
    ExprP e = unary(true);
    while (isOp("**")) {
      ++i_;
      e = binary("**", std::move(e), unary(true));
    }
    return e;
  }
  ExprP unary(bool withFilter) {
    Guard g(*this);
    ExprP e;
    if (isOp("-") || isOp("+")) {
      bool neg = next().s == "-";
      ExprP inner = unary(false);
      if (neg) {
        e = make(Expr::Neg);
        e->args.push_back(std::move(inner));
      } else {
        e = std::move(inner);
      }
    } else {
      e = postfix(primary());
    }
    return withFilter ? filters(std::move(e)) : std::move(e);
  }
  void callArgs(Expr &call) {
    expectOp("(");
    while (!isOp(")")) {
      if (peek().kind == Tok::Name && isOp("=", 1)) {
        std::string k = next().s;
        ++i_;
        call.kwargs.emplace_back(k, expr());
      } else {
        if (!call.kwargs.empty())
          fail("a positional argument after a keyword argument");
        call.args.push_back(expr());
      }
      if (!isOp(","))
        break;
      ++i_;
    }
    expectOp(")");
  }
  ExprP primary() {
    const Tok t = next();
    ExprP e;
    switch (t.kind) {
    case Tok::Name:
      if (t.s == "true" || t.s == "True" || t.s == "false" || t.s == "False") {
        e = make(Expr::Lit);
        e->lit = Value::of(t.s[0] == 't' || t.s[0] == 'T');
      } else if (t.s == "none" || t.s == "None") {
        e = make(Expr::Lit);
        e->lit = Value::none();
      } else {
        e = make(Expr::Name);
        e->name = t.s;
      }
      return e;
    case Tok::Int:
      e = make(Expr::Lit);
      e->lit = Value::of(t.i);
      return e;
    case Tok::Float:
      e = make(Expr::Lit);
      e->lit = Value::of(t.f);
      return e;
    case Tok::Str: {
      std::string s = t.s;
      while (peek().kind == Tok::Str) // adjacent literals join
        s += next().s;
      e = make(Expr::Lit);
      e->lit = Value::of(s);
      return e;
    }
    case Tok::Op:
      if (t.s == "(") {
        if (isOp(")")) { // ()
          ++i_;
          e = make(Expr::ListE);
          e->negate = true;
          return e;
        }
        ExprP first = expr();
        if (isOp(")")) {
          ++i_;
          return first;
        }
        e = make(Expr::ListE); // a tuple
        e->negate = true;      // (printed as one)
        e->args.push_back(std::move(first));
        while (isOp(",")) {
          ++i_;
          if (isOp(")"))
            break;
          e->args.push_back(expr());
        }
        expectOp(")");
        return e;
      }
      if (t.s == "[") {
        e = make(Expr::ListE);
        while (!isOp("]")) {
          e->args.push_back(expr());
          if (!isOp(","))
            break;
          ++i_;
        }
        expectOp("]");
        return e;
      }
      if (t.s == "{") {
        e = make(Expr::DictE);
        while (!isOp("}")) {
          e->args.push_back(expr());
          expectOp(":");
          e->args.push_back(expr());
          if (!isOp(","))
            break;
          ++i_;
        }
        expectOp("}");
        return e;
      }
      break;
    default:
      break;
    }
    --i_;
    fail("expected an expression");
  }
  ExprP postfix(ExprP e) {
    for (;;) {
      if (isOp(".")) {
        ++i_;
        ExprP a = make(Expr::Attr);
        if (peek().kind == Tok::Int) { // x.0: an item
          a->op = Expr::Index;
          ExprP k = make(Expr::Lit);
          k->lit = Value::of(next().i);
          a->args.push_back(std::move(e));
          a->args.push_back(std::move(k));
        } else {
          a->name = expectName();
          a->args.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (isOp("[")) {
        ++i_;
        ExprP parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!isOp(":") && !isOp("]"))
            parts[k] = expr();
          if (isOp(":") && k < 2) {
            ++i_;
            slice = true;
          } else {
            break;
          }
        }
        expectOp("]");
        if (slice) {
          ExprP s = make(Expr::Slice);
          s->args.push_back(std::move(e));
          for (auto &p : parts)
            s->args.push_back(std::move(p));
          e = std::move(s);
        } else {
          if (!parts[0])
            fail("an empty subscript");
          ExprP ix = make(Expr::Index);
          ix->args.push_back(std::move(e));
          ix->args.push_back(std::move(parts[0]));
          e = std::move(ix);
        }
      } else if (isOp("(")) {
        ExprP c;
        if (e->op == Expr::Attr) { // obj.method(...)
          c = make(Expr::Method);
          c->name = e->name;
          c->args.push_back(std::move(e->args[0]));
        } else if (e->op == Expr::Name) {
          c = make(Expr::Call);
          c->name = e->name;
        } else {
          fail("only names and methods can be called");
        }
        callArgs(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  ExprP filters(ExprP e) {
    for (;;) {
      if (isOp("|")) {
        ++i_;
        ExprP f = make(Expr::Filter);
        f->name = expectName();
        f->args.push_back(std::move(e));
        if (isOp("("))
          callArgs(*f);
        checkFilter(f->name);
        e = std::move(f);
      } else if (isName("is")) {
        ++i_;
        ExprP t = make(Expr::Test);
        if (isName("not")) {
          ++i_;
          t->negate = true;
        }
        // `is none`, `is true`: the literals name tests too.
        t->name = expectName();
        t->args.push_back(std::move(e));
        if (isOp("(")) {
          callArgs(*t);
        } else if (peek().kind == Tok::Int || peek().kind == Tok::Float || peek().kind == Tok::Str ||
                   (peek().kind == Tok::Name && !isName("and") && !isName("or") && !isName("else") &&
                    !isName("if") && !isName("in") && !isName("is") && !isName("not"))) {
          t->args.push_back(postfix(primary()));
        }
        checkTest(t->name);
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  void checkFilter(const std::string &n) const {
    if (std::find(filterNames().begin(), filterNames().end(), n) == filterNames().end())
      failAt(line_, "unsupported filter '" + n + "'");
  }
  void checkTest(const std::string &n) const {
    if (std::find(testNames().begin(), testNames().end(), n) == testNames().end())
      failAt(line_, "unsupported test '" + n + "'");
  }

private:
  struct Guard {
    explicit Guard(ExprParser &p) : p(p) {
      if (++p.depth_ > kMaxDepth)
        failAt(p.line_, "expression nested too deeply");
    }
    ~Guard() { --p.depth_; }
    ExprParser &p;
  };
  std::vector<Tok> t_;
  size_t i_ = 0;
  int line_;
  int depth_ = 0;
};

class Parser {
public:
  explicit Parser(std::vector<Segment> segs) : s_(std::move(segs)) {}

  NodeP parseAll() {
    std::string end;
    NodeP n = body({}, end);
    return n;
  }

private:
  // A body up to one of `ends` (a block tag's first word), which it leaves
  // in `end` with the tag's parser positioned after that word.
  NodeP body(const std::vector<std::string> &ends, std::string &end) {
    if (++depth_ > kMaxDepth)
      failAt(line(), "blocks nested too deeply");
    auto seq = std::make_unique<Node>();
    seq->kind = Node::Seq;
    while (i_ < s_.size()) {
      const Segment &g = s_[i_++];
      if (g.kind == Segment::Text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Text;
        n->text = g.text;
        seq->children.push_back(std::move(n));
        continue;
      }
      ExprParser p(tokens(g.text, g.line), g.line);
      if (g.kind == Segment::Expr) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Out;
        n->line = g.line;
        n->exprs.push_back(p.expr());
        p.expectEnd();
        seq->children.push_back(std::move(n));
        continue;
      }
      if (p.atEnd())
        failAt(g.line, "an empty block tag");
      std::string word = p.expectName();
      if (std::find(ends.begin(), ends.end(), word) != ends.end()) {
        end = word;
        cur_ = std::make_unique<ExprParser>(std::move(p));
        --depth_;
        return seq;
      }
      seq->children.push_back(statement(word, p, g.line));
    }
    if (!ends.empty())
      failAt(s_.empty() ? 1 : s_.back().line, "missing '" + ends.back() + "'");
    --depth_;
    return seq;
  }

  int line() const { return i_ < s_.size() ? s_[i_].line : (s_.empty() ? 1 : s_.back().line); }

  NodeP statement(const std::string &word, ExprParser &p, int line) {
    auto n = std::make_unique<Node>();
    n->line = line;
    std::string end;
    if (word == "if") {
      n->kind = Node::If;
      n->exprs.push_back(p.expr());
      p.expectEnd();
      for (;;) {
        n->children.push_back(body({"elif", "else", "endif"}, end));
        if (end == "elif") {
          n->exprs.push_back(cur_->expr());
          cur_->expectEnd();
          continue;
        }
        cur_->expectEnd();
        if (end == "else") {
          n->hasElse = true;
          n->children.push_back(body({"endif"}, end));
          cur_->expectEnd();
        }
        break;
      }
      return n;
    }
    if (word == "for") {
      n->kind = Node::For;
      n->names.push_back(p.expectName());
      while (p.isOp(",")) {
        p.next();
        n->names.push_back(p.expectName());
      }
      if (!p.isName("in"))
        p.fail("expected 'in'");
      p.next();
      n->exprs.push_back(p.orExpr());
      if (p.isName("if")) {
        p.next();
        n->hasFilter = true;
        n->exprs.push_back(p.orExpr());
      }
      if (p.isName("recursive"))
        failAt(line, "recursive loops are not supported");
      p.expectEnd();
      ++loops_;
      n->children.push_back(body({"else", "endfor"}, end));
      --loops_;
      cur_->expectEnd();
      if (end == "else") {
        n->hasElse = true;
        n->children.push_back(body({"endfor"}, end));
        cur_->expectEnd();
      }
      return n;
    }
    if (word == "set") {
      n->names.push_back(p.expectName());
      if (p.isOp(".")) {
        p.next();
        n->names.push_back(p.expectName());
      }
      if (p.isOp("=")) {
        p.next();
        n->kind = Node::Set;
        n->exprs.push_back(p.expr());
        p.expectEnd();
        return n;
      }
      p.expectEnd();
      if (n->names.size() != 1)
        failAt(line, "a block 'set' assigns a name");
      n->kind = Node::SetBlock;
      n->children.push_back(body({"endset"}, end));
      cur_->expectEnd();
      return n;
    }
    if (word == "generation") { // transformers' AssistantTracker: the body as is
      p.expectEnd();
      NodeP b = body({"endgeneration"}, end);
      cur_->expectEnd();
      return b;
    }
    if (word == "break" || word == "continue") {
      if (!loops_)
        failAt(line, "'" + word + "' outside a loop");
      p.expectEnd();
      n->kind = word == "break" ? Node::Break : Node::Continue;
      return n;
    }
    failAt(line, "unsupported tag '" + word + "'");
  }

  std::vector<Segment> s_;
  size_t i_ = 0;
  int depth_ = 0, loops_ = 0;
  std::unique_ptr<ExprParser> cur_; // the tag that ended the last body
};

} // namespace

NodeP parse(const std::string &source) {
  // Jinja drops one newline at the end of the source (keep_trailing_newline off).
  std::string src = source;
  if (!src.empty() && src.back() == '\n') {
    src.pop_back();
    if (!src.empty() && src.back() == '\r')
      src.pop_back();
  }
  return Parser(segments(src)).parseAll();
}

} // namespace detail

// ---- the API ----------------------------------------------------------------------

Status toJson(const Value &v, std::string &out) {
  out.clear();
  try {
    detail::toJson(v, out, -1, ", ", ": ", false, 0);
    return Status::ok();
  } catch (const detail::Failure &f) {
    out.clear();
    return Status::error(f.what());
  }
}

Template::Template() = default;
Template::~Template() = default;
Template::Template(Template &&) noexcept = default;
Template &Template::operator=(Template &&) noexcept = default;

Status Template::parse(const std::string &source, Template &out) {
  try {
    out.root_ = detail::parse(source);
    return Status::ok();
  } catch (const detail::Failure &f) {
    return Status::error(std::string("chat template: ") + f.what());
  }
}

Status Template::render(const Dict &context, std::string &out) const {
  out.clear();
  if (!root_)
    return Status::error("chat template: none parsed");
  try {
    detail::render(*root_, context, out);
    return Status::ok();
  } catch (const detail::Failure &f) {
    out.clear();
    return Status::error(std::string("chat template: ") + f.what());
  }
}

} // namespace kiln::jinja
