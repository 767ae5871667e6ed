//===- Tokenizer.cpp - tokenizer.json: BPE encode and decode --------------===//
#include "runtime/tokenizer/Tokenizer.h"

#include "runtime/format/Json.h"
#include "runtime/tokenizer/Normalize.h"
#include "runtime/tokenizer/Regex.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>

namespace kiln::tok {

namespace {

using format::JsonValue;

/// GPT-2's byte <-> printable code point map.
struct ByteMap {
  uint32_t toChar[256];
  std::unordered_map<uint32_t, uint8_t> toByte;
  ByteMap() {
    uint32_t extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      toChar[b] = printable ? b : extra++;
      toByte[toChar[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap &byteMap() {
  static const ByteMap m;
  return m;
}

std::string str(const JsonValue *v) { return v && v->isString() ? v->asString() : std::string(); }
bool flag(const JsonValue *v, bool otherwise) { return v && v->isBool() ? v->asBool() : otherwise; }

const char *kGpt2Split =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct NormStep {
  enum Kind { Prepend, Replace, Nfc } kind = Prepend;
  std::string a, b;
};

struct PreStep {
  enum Kind { ByteLevel, Split, Metaspace, Digits } kind = ByteLevel;
  bool addPrefixSpace = false, useRegex = true;  // ByteLevel
  std::shared_ptr<Regex> regex;                  // ByteLevel (GPT-2 split), Split
  bool removeMatches = false, invert = false;    // Split
  std::string replacement = "\xE2\x96\x81";      // Metaspace
  std::string prependScheme = "always";
  bool split = true;
  bool individualDigits = false;                 // Digits
};

struct DecodeStep {
  enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind = Fuse;
  std::string a, b;
  int64_t start = 0, stop = 0;
  bool prepend = true;
};

struct AddedToken {
  int64_t id;
  std::string content;
  bool special;
};

} // namespace

struct Tokenizer::Impl {
  std::string source;
  std::vector<NormStep> norm;
  std::vector<PreStep> pre;
  std::vector<DecodeStep> dec;
  std::vector<AddedToken> added; // longest content first
  // BPE
  std::unordered_map<std::string, int64_t> vocab;
  std::vector<std::string> idToToken;
  std::unordered_map<uint64_t, std::pair<int32_t, int64_t>> merges; // (a, b) -> (rank, merged id)
  bool byteFallback = false, ignoreMerges = false, fuseUnk = false;
  int64_t unk = -1;
  std::vector<bool> isSpecial;

  Status fail(const std::string &what) const { return Status::error(source + ": " + what); }
  // Token ids index a table, so they must be nearly dense: an id far past
  // the number of tokens would make a file of a few bytes ask for gigabytes.
  Status checkId(const std::string &what, int64_t id, size_t entries) const {
    if (id < 0 || static_cast<uint64_t>(id) >= 4 * static_cast<uint64_t>(entries) + 65536)
      return fail(what + " has id " + std::to_string(id) + ", far beyond the " + std::to_string(entries) +
                  " tokens (ids must be nearly dense)");
    return Status::ok();
  }

  Status parseNormalizer(const JsonValue *n);
  Status parsePre(const JsonValue *p);
  Status parseDecoder(const JsonValue *d);
  Status parseModel(const JsonValue *m);

  void normalize(std::string &s) const;
  Status preTokenize(const std::string &s, std::vector<std::string> &pieces) const;
  Status bpe(const std::string &word, std::vector<int64_t> &ids) const;
};

Status Tokenizer::Impl::parseNormalizer(const JsonValue *n) {
  if (!n || n->isNull())
    return Status::ok();
  std::string type = str(n->find("type"));
  if (type == "Sequence") {
    const JsonValue *list = n->find("normalizers");
    if (!list || !list->isArray())
      return fail("normalizer Sequence without normalizers");
    for (const JsonValue &x : list->asArray())
      KILN_RETURN_IF_ERROR(parseNormalizer(&x));
    return Status::ok();
  }
  NormStep s;
  if (type == "Prepend") {
    s.kind = NormStep::Prepend;
    s.a = str(n->find("prepend"));
  } else if (type == "Replace") {
    s.kind = NormStep::Replace;
    const JsonValue *pat = n->find("pattern");
    if (!pat || !pat->find("String"))
      return fail("normalizer Replace with a regex pattern is not supported");
    s.a = str(pat->find("String"));
    s.b = str(n->find("content"));
    if (s.a.empty())
      return fail("normalizer Replace of an empty string");
  } else if (type == "NFC") {
    s.kind = NormStep::Nfc;
  } else {
    return fail("normalizer '" + type + "' is not supported");
  }
  norm.push_back(s);
  return Status::ok();
}

Status Tokenizer::Impl::parsePre(const JsonValue *p) {
  if (!p || p->isNull())
    return Status::ok();
  std::string type = str(p->find("type"));
  if (type == "Sequence") {
    const JsonValue *list = p->find("pretokenizers");
    if (!list || !list->isArray())
      return fail("pre_tokenizer Sequence without pretokenizers");
    for (const JsonValue &x : list->asArray())
      KILN_RETURN_IF_ERROR(parsePre(&x));
    return Status::ok();
  }
  PreStep s;
  if (type == "ByteLevel") {
    s.kind = PreStep::ByteLevel;
    s.addPrefixSpace = flag(p->find("add_prefix_space"), false);
    s.useRegex = flag(p->find("use_regex"), true);
    if (s.useRegex) {
      s.regex = std::make_shared<Regex>();
      KILN_RETURN_IF_ERROR(Regex::compile(kGpt2Split, *s.regex));
    }
  } else if (type == "Split") {
    s.kind = PreStep::Split;
    const JsonValue *pat = p->find("pattern");
    std::string re = pat ? str(pat->find("Regex")) : "";
    if (re.empty() && pat && pat->find("String")) {
      // A literal: escape it.
      for (char c : str(pat->find("String"))) {
        if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos)
          re += '\\';
        re += c;
      }
    }
    if (re.empty())
      return fail("pre_tokenizer Split without a pattern");
    s.regex = std::make_shared<Regex>();
    if (Status st = Regex::compile(re, *s.regex); !st)
      return fail("pre_tokenizer Split: " + st.message());
    std::string behavior = str(p->find("behavior"));
    if (behavior == "Removed")
      s.removeMatches = true;
    else if (behavior != "Isolated")
      return fail("pre_tokenizer Split behavior '" + behavior + "' is not supported (Isolated, Removed)");
    s.invert = flag(p->find("invert"), false);
    if (s.invert)
      return fail("pre_tokenizer Split with invert is not supported");
  } else if (type == "Metaspace") {
    s.kind = PreStep::Metaspace;
    if (const JsonValue *r = p->find("replacement"); r && r->isString())
      s.replacement = r->asString();
    if (const JsonValue *ps = p->find("prepend_scheme"); ps && ps->isString())
      s.prependScheme = ps->asString();
    else if (!flag(p->find("add_prefix_space"), true))
      s.prependScheme = "never";
    s.split = flag(p->find("split"), true);
  } else if (type == "Digits") {
    s.kind = PreStep::Digits;
    s.individualDigits = flag(p->find("individual_digits"), false);
  } else {
    return fail("pre_tokenizer '" + type + "' is not supported");
  }
  pre.push_back(s);
  return Status::ok();
}

Status Tokenizer::Impl::parseDecoder(const JsonValue *d) {
  if (!d || d->isNull())
    return Status::ok();
  std::string type = str(d->find("type"));
  if (type == "Sequence") {
    const JsonValue *list = d->find("decoders");
    if (!list || !list->isArray())
      return fail("decoder Sequence without decoders");
    for (const JsonValue &x : list->asArray())
      KILN_RETURN_IF_ERROR(parseDecoder(&x));
    return Status::ok();
  }
  DecodeStep s;
  if (type == "ByteLevel") {
    s.kind = DecodeStep::ByteLevel;
  } else if (type == "Replace") {
    s.kind = DecodeStep::Replace;
    const JsonValue *pat = d->find("pattern");
    if (!pat || !pat->find("String"))
      return fail("decoder Replace with a regex pattern is not supported");
    s.a = str(pat->find("String"));
    s.b = str(d->find("content"));
  } else if (type == "ByteFallback") {
    s.kind = DecodeStep::ByteFallback;
  } else if (type == "Fuse") {
    s.kind = DecodeStep::Fuse;
  } else if (type == "Strip") {
    s.kind = DecodeStep::Strip;
    s.a = str(d->find("content"));
    const JsonValue *a = d->find("start"), *b = d->find("stop");
    s.start = a && a->isInteger() ? a->asInt() : 0;
    s.stop = b && b->isInteger() ? b->asInt() : 0;
  } else if (type == "Metaspace") {
    s.kind = DecodeStep::Metaspace;
    if (const JsonValue *r = d->find("replacement"); r && r->isString())
      s.a = r->asString();
    else
      s.a = "\xE2\x96\x81";
    std::string scheme = str(d->find("prepend_scheme"));
    s.prepend = scheme.empty() ? flag(d->find("add_prefix_space"), true) : scheme != "never";
  } else {
    return fail("decoder '" + type + "' is not supported");
  }
  dec.push_back(s);
  return Status::ok();
}

Status Tokenizer::Impl::parseModel(const JsonValue *m) {
  if (!m || !m->isObject())
    return fail("no model");
  std::string type = str(m->find("type"));
  if (type != "BPE")
    return fail("model '" + type + "' is not supported (BPE)");
  if (!str(m->find("continuing_subword_prefix")).empty() || !str(m->find("end_of_word_suffix")).empty())
    return fail("BPE continuing_subword_prefix and end_of_word_suffix are not supported");
  if (const JsonValue *dr = m->find("dropout"); dr && !dr->isNull() && dr->asNumber() != 0.0)
    return fail("BPE dropout is not supported");
  byteFallback = flag(m->find("byte_fallback"), false);
  ignoreMerges = flag(m->find("ignore_merges"), false);
  fuseUnk = flag(m->find("fuse_unk"), false);
  const JsonValue *v = m->find("vocab");
  if (!v || !v->isObject())
    return fail("BPE without a vocab");
  for (const auto &[tok, id] : v->asObject()) {
    if (!id.isInteger())
      return fail("vocab entry '" + tok + "' has a bad id");
    KILN_RETURN_IF_ERROR(checkId("vocab entry '" + tok + "'", id.asInt(), v->asObject().size()));
    vocab[tok] = id.asInt();
    if (static_cast<size_t>(id.asInt()) >= idToToken.size())
      idToToken.resize(static_cast<size_t>(id.asInt()) + 1);
    idToToken[static_cast<size_t>(id.asInt())] = tok;
  }
  std::string unkTok = str(m->find("unk_token"));
  if (!unkTok.empty()) {
    auto it = vocab.find(unkTok);
    unk = it == vocab.end() ? -1 : it->second;
  }
  const JsonValue *ms = m->find("merges");
  if (!ms || !ms->isArray())
    return fail("BPE without merges");
  int32_t rank = 0;
  for (const JsonValue &x : ms->asArray()) {
    std::string a, b;
    if (x.isString()) {
      const std::string &s = x.asString();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos)
        return fail("merge '" + s + "' is not two tokens");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (x.isArray() && x.asArray().size() == 2 && x.asArray()[0].isString()) {
      a = x.asArray()[0].asString();
      b = x.asArray()[1].asString();
    } else {
      return fail("merge " + std::to_string(rank) + " is neither \"a b\" nor [a, b]");
    }
    auto ia = vocab.find(a), ib = vocab.find(b), im = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end())
      return fail("merge '" + a + " " + b + "' names a token not in the vocab");
    uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint64_t>(ib->second);
    merges.emplace(key, std::make_pair(rank, im->second)); // the first (lowest) rank wins
    ++rank;
  }
  return Status::ok();
}

void Tokenizer::Impl::normalize(std::string &s) const {
  for (const NormStep &n : norm) {
    if (n.kind == NormStep::Prepend) {
      if (!s.empty())
        s = n.a + s;
    } else if (n.kind == NormStep::Nfc) {
      s = toNfc(s);
    } else if (n.kind == NormStep::Replace) {
      std::string out;
      size_t i = 0;
      while (i < s.size()) {
        if (s.compare(i, n.a.size(), n.a) == 0) {
          out += n.b;
          i += n.a.size();
        } else {
          out += s[i++];
        }
      }
      s = std::move(out);
    }
  }
}

Status Tokenizer::Impl::preTokenize(const std::string &text, std::vector<std::string> &pieces) const {
  pieces = {text};
  bool first = true;
  for (const PreStep &p : pre) {
    std::vector<std::string> next;
    for (size_t pi = 0; pi < pieces.size(); ++pi) {
      const std::string &piece = pieces[pi];
      switch (p.kind) {
      case PreStep::ByteLevel: {
        std::string s = piece;
        if (p.addPrefixSpace && first && pi == 0 && !s.empty() && s[0] != ' ')
          s = " " + s;
        std::vector<std::string> parts;
        if (p.useRegex) {
          std::vector<uint32_t> cps = decodeUtf8(s);
          std::vector<std::pair<size_t, size_t>> matches;
          KILN_RETURN_IF_ERROR(p.regex->findAll(cps, matches).withContext(source));
          for (auto [b, e] : matches) {
            std::string part;
            for (size_t i = b; i < e; ++i)
              appendUtf8(cps[i], part);
            parts.push_back(std::move(part));
          }
        } else {
          parts.push_back(s);
        }
        for (const std::string &part : parts) {
          std::string mapped;
          for (unsigned char c : part)
            appendUtf8(byteMap().toChar[c], mapped);
          next.push_back(std::move(mapped));
        }
        break;
      }
      case PreStep::Split: {
        std::vector<uint32_t> cps = decodeUtf8(piece);
        size_t at = 0;
        auto emit = [&](size_t b, size_t e) {
          if (b >= e)
            return;
          std::string part;
          for (size_t i = b; i < e; ++i)
            appendUtf8(cps[i], part);
          next.push_back(std::move(part));
        };
        std::vector<std::pair<size_t, size_t>> matches;
        KILN_RETURN_IF_ERROR(p.regex->findAll(cps, matches).withContext(source));
        for (auto [b, e] : matches) {
          emit(at, b);
          if (!p.removeMatches)
            emit(b, e);
          at = e;
        }
        emit(at, cps.size());
        break;
      }
      case PreStep::Metaspace: {
        std::string s;
        for (char c : piece) {
          if (c == ' ')
            s += p.replacement;
          else
            s += c;
        }
        bool prepend = p.prependScheme == "always" || (p.prependScheme == "first" && first && pi == 0);
        if (prepend && s.compare(0, p.replacement.size(), p.replacement) != 0)
          s = p.replacement + s;
        if (!p.split) {
          next.push_back(s);
          break;
        }
        size_t start = 0;
        for (size_t i = p.replacement.size(); i <= s.size(); ++i) {
          if (i == s.size() || s.compare(i, p.replacement.size(), p.replacement) == 0) {
            if (i > start)
              next.push_back(s.substr(start, i - start));
            start = i;
          }
        }
        break;
      }
      case PreStep::Digits: {
        std::vector<uint32_t> cps = decodeUtf8(piece);
        std::string cur;
        int curKind = -1; // 1 digit, 0 other
        for (uint32_t c : cps) {
          int kind = (c >= '0' && c <= '9') ? 1 : 0;
          if (!cur.empty() && (kind != curKind || (kind == 1 && p.individualDigits))) {
            next.push_back(cur);
            cur.clear();
          }
          appendUtf8(c, cur);
          curKind = kind;
        }
        if (!cur.empty())
          next.push_back(cur);
        break;
      }
      }
    }
    pieces = std::move(next);
    first = false;
  }
  return Status::ok();
}

Status Tokenizer::Impl::bpe(const std::string &word, std::vector<int64_t> &ids) const {
  if (word.empty())
    return Status::ok();
  if (ignoreMerges) {
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      ids.push_back(it->second);
      return Status::ok();
    }
  }
  std::vector<int64_t> sym;
  std::vector<uint32_t> cps = decodeUtf8(word);
  bool lastUnk = false;
  for (uint32_t c : cps) {
    std::string ch;
    appendUtf8(c, ch);
    auto it = vocab.find(ch);
    if (it != vocab.end()) {
      sym.push_back(it->second);
      lastUnk = false;
    } else if (byteFallback) {
      bool all = true;
      std::vector<int64_t> bytes;
      for (unsigned char b : ch) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        auto bt = vocab.find(name);
        if (bt == vocab.end()) {
          all = false;
          break;
        }
        bytes.push_back(bt->second);
      }
      if (all) {
        sym.insert(sym.end(), bytes.begin(), bytes.end());
        lastUnk = false;
      } else if (unk >= 0) {
        if (!(fuseUnk && lastUnk))
          sym.push_back(unk);
        lastUnk = true;
      } else {
        return Status::error(source + ": no token for U+" + std::to_string(c) + " and no unk_token");
      }
    } else if (unk >= 0) {
      if (!(fuseUnk && lastUnk))
        sym.push_back(unk);
      lastUnk = true;
    } else {
      return Status::error(source + ": no token for code point " + std::to_string(c) +
                           " and no unk_token or byte fallback");
    }
  }
  while (sym.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    size_t at = 0;
    int64_t merged = -1;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = merges.find((static_cast<uint64_t>(sym[i]) << 32) | static_cast<uint64_t>(sym[i + 1]));
      if (it != merges.end() && it->second.first < best) {
        best = it->second.first;
        at = i;
        merged = it->second.second;
      }
    }
    if (merged < 0)
      break;
    sym[at] = merged;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  ids.insert(ids.end(), sym.begin(), sym.end());
  return Status::ok();
}

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;

Status Tokenizer::load(const std::string &path, Tokenizer &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return Status::error(path + ": cannot open the tokenizer");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path, out);
}

Status Tokenizer::parse(std::string_view json, const std::string &source, Tokenizer &out) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  JsonValue root;
  if (Status s = format::parseJson(json, root); !s)
    return Status::error(source + ": " + s.message());
  if (!root.isObject())
    return Status::error(source + ": not a tokenizer.json (the top level is not an object)");
  KILN_RETURN_IF_ERROR(impl->parseModel(root.find("model")));
  KILN_RETURN_IF_ERROR(impl->parseNormalizer(root.find("normalizer")));
  KILN_RETURN_IF_ERROR(impl->parsePre(root.find("pre_tokenizer")));
  KILN_RETURN_IF_ERROR(impl->parseDecoder(root.find("decoder")));
  impl->isSpecial.assign(impl->idToToken.size(), false);
  if (const JsonValue *added = root.find("added_tokens"); added && added->isArray()) {
    for (const JsonValue &a : added->asArray()) {
      const JsonValue *id = a.find("id");
      std::string content = str(a.find("content"));
      if (!id || !id->isInteger() || id->asInt() < 0 || content.empty())
        return Status::error(source + ": an added token without id or content");
      KILN_RETURN_IF_ERROR(impl->checkId("added token '" + content + "'", id->asInt(),
                                         impl->vocab.size() + added->asArray().size()));
      AddedToken t{id->asInt(), content, flag(a.find("special"), false)};
      impl->added.push_back(t);
      impl->vocab[content] = t.id;
      if (static_cast<size_t>(t.id) >= impl->idToToken.size()) {
        impl->idToToken.resize(static_cast<size_t>(t.id) + 1);
        impl->isSpecial.resize(impl->idToToken.size(), false);
      }
      impl->idToToken[static_cast<size_t>(t.id)] = content;
      impl->isSpecial[static_cast<size_t>(t.id)] = t.special;
    }
  }
  std::stable_sort(impl->added.begin(), impl->added.end(),
                   [](const AddedToken &a, const AddedToken &b) { return a.content.size() > b.content.size(); });
  out.impl_ = std::move(impl);
  return Status::ok();
}

Status Tokenizer::encode(std::string_view text, std::vector<int64_t> &ids) const {
  ids.clear();
  const Impl &im = *impl_;
  // Split on added tokens (leftmost, then longest), then the rest.
  size_t at = 0;
  auto plain = [&](std::string seg) -> Status {
    if (seg.empty())
      return Status::ok();
    im.normalize(seg);
    std::vector<std::string> pieces;
    KILN_RETURN_IF_ERROR(im.preTokenize(seg, pieces));
    for (const std::string &p : pieces)
      KILN_RETURN_IF_ERROR(im.bpe(p, ids));
    return Status::ok();
  };
  size_t segStart = 0;
  while (at < text.size()) {
    const AddedToken *hit = nullptr;
    for (const AddedToken &t : im.added)
      if (text.compare(at, t.content.size(), t.content) == 0) {
        hit = &t;
        break;
      }
    if (!hit) {
      ++at;
      continue;
    }
    KILN_RETURN_IF_ERROR(plain(std::string(text.substr(segStart, at - segStart))));
    ids.push_back(hit->id);
    at += hit->content.size();
    segStart = at;
  }
  return plain(std::string(text.substr(segStart)));
}

Status Tokenizer::decode(const std::vector<int64_t> &ids, std::string &text, bool skipSpecial) const {
  return decode(ids, text, skipSpecial, {});
}

Status Tokenizer::decode(const std::vector<int64_t> &ids, std::string &text, bool skipSpecial,
                         const std::vector<int64_t> &keep) const {
  const Impl &im = *impl_;
  std::vector<std::string> run;
  for (int64_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= im.idToToken.size() || im.idToToken[static_cast<size_t>(id)].empty())
      return Status::error(im.source + ": token id " + std::to_string(id) + " is not in the vocabulary");
    if (skipSpecial && im.isSpecial[static_cast<size_t>(id)] && std::find(keep.begin(), keep.end(), id) == keep.end())
      continue;
    run.push_back(im.idToToken[static_cast<size_t>(id)]);
  }
  // Every token, added ones too, goes through the decoder chain, as in the
  // tokenizers library.
  text.clear();
  {
    for (const DecodeStep &d : im.dec) {
      switch (d.kind) {
      case DecodeStep::ByteLevel: {
        // A token with a code point outside the byte map (an added token
        // such as a chat marker) contributes its own bytes.
        std::string bytes;
        for (const std::string &t : run) {
          std::string mapped;
          bool all = true;
          for (uint32_t c : decodeUtf8(t)) {
            auto it = byteMap().toByte.find(c);
            if (it == byteMap().toByte.end()) {
              all = false;
              break;
            }
            mapped += static_cast<char>(it->second);
          }
          bytes += all ? mapped : t;
        }
        // Invalid UTF-8 becomes U+FFFD, as the library's lossy decoding does.
        std::string clean;
        for (uint32_t c : decodeUtf8(bytes))
          appendUtf8(c, clean);
        run = {clean};
        break;
      }
      case DecodeStep::Replace:
        for (std::string &t : run) {
          std::string out;
          size_t k = 0;
          while (k < t.size()) {
            if (!d.a.empty() && t.compare(k, d.a.size(), d.a) == 0) {
              out += d.b;
              k += d.a.size();
            } else {
              out += t[k++];
            }
          }
          t = std::move(out);
        }
        break;
      case DecodeStep::ByteFallback: {
        std::vector<std::string> out;
        std::string bytes;
        auto flush = [&]() {
          if (bytes.empty())
            return;
          std::vector<uint32_t> cps = decodeUtf8(bytes);
          bool valid = std::find(cps.begin(), cps.end(), 0xFFFDu) == cps.end();
          if (valid) {
            out.push_back(bytes);
          } else {
            for (size_t k = 0; k < bytes.size(); ++k)
              out.push_back("\xEF\xBF\xBD");
          }
          bytes.clear();
        };
        for (const std::string &t : run) {
          unsigned v = 0;
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
              std::sscanf(t.c_str() + 3, "%2X", &v) == 1) {
            bytes += static_cast<char>(v);
          } else {
            flush();
            out.push_back(t);
          }
        }
        flush();
        run = std::move(out);
        break;
      }
      case DecodeStep::Fuse: {
        std::string all;
        for (const std::string &t : run)
          all += t;
        run = {all};
        break;
      }
      case DecodeStep::Strip:
        for (std::string &t : run) {
          for (int64_t k = 0; k < d.start && t.compare(0, d.a.size(), d.a) == 0 && !d.a.empty(); ++k)
            t.erase(0, d.a.size());
          for (int64_t k = 0; k < d.stop && !d.a.empty() && t.size() >= d.a.size() &&
                              t.compare(t.size() - d.a.size(), d.a.size(), d.a) == 0;
               ++k)
            t.erase(t.size() - d.a.size());
        }
        break;
      case DecodeStep::Metaspace:
        for (size_t k = 0; k < run.size(); ++k) {
          std::string out;
          size_t j = 0;
          while (j < run[k].size()) {
            if (run[k].compare(j, d.a.size(), d.a) == 0) {
              out += ' ';
              j += d.a.size();
            } else {
              out += run[k][j++];
            }
          }
          if (k == 0 && d.prepend && !out.empty() && out[0] == ' ')
            out.erase(0, 1);
          run[k] = std::move(out);
        }
        break;
      }
    }
    for (const std::string &t : run)
      text += t;
  }
  return Status::ok();
}

int64_t Tokenizer::vocabSize() const { return static_cast<int64_t>(impl_->idToToken.size()); }

int64_t Tokenizer::tokenId(std::string_view token) const {
  auto it = impl_->vocab.find(std::string(token));
  return it == impl_->vocab.end() ? -1 : it->second;
}

} // namespace kiln::tok
