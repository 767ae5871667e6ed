//===- BlockManager.cpp - the KV pool's pages and prefix sharing ----------===//
#include "runtime/core/BlockManager.h"

#include <algorithm>
#include <string>

namespace kiln::rt {

BlockManager::BlockManager(int64_t pages, int64_t pageSize, bool prefixCaching)
    : pageSize_(pageSize), prefixCaching_(prefixCaching), refs_(static_cast<size_t>(pages), 0) {
  // Hand out low pages first.
  for (int64_t p = pages - 1; p >= 0; --p)
    free_.push_back(static_cast<int32_t>(p));
}

uint64_t BlockManager::keyOf(uint64_t parent, const int64_t *tokens) const {
  // FNV-1a over the parent's node and the page's token ids; entries keep
  // their tokens, so a collision costs a comparison, never a wrong match.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(parent);
  for (int64_t i = 0; i < pageSize_; ++i)
    mix(static_cast<uint64_t>(tokens[i]));
  return h;
}

int32_t BlockManager::take() {
  if (!free_.empty()) {
    int32_t p = free_.back();
    free_.pop_back();
    return p;
  }
  if (idle_.empty())
    return -1;
  int32_t p = idle_.front();
  idle_.pop_front();
  idleAt_.erase(p);
  auto e = entries_.find(p);
  auto [lo, hi] = byKey_.equal_range(e->second.key);
  for (auto it = lo; it != hi; ++it)
    if (it->second == p) {
      byKey_.erase(it);
      break;
    }
  entries_.erase(e);
  return p;
}

void BlockManager::drop(int32_t page) {
  if (--refs_[static_cast<size_t>(page)] > 0)
    return;
  if (entries_.count(page)) {
    idle_.push_back(page);
    idleAt_[page] = std::prev(idle_.end());
  } else {
    free_.push_back(page);
  }
}

void BlockManager::admit(int64_t seq, const std::vector<int64_t> &tokens, int64_t maxCached, int64_t &cached) {
  std::vector<int32_t> &t = tables_[seq];
  cached = 0;
  if (!prefixCaching_ || !t.empty())
    return;
  uint64_t parent = 0;
  int64_t limit = std::min<int64_t>(maxCached, static_cast<int64_t>(tokens.size()));
  for (int64_t i = 0; (i + 1) * pageSize_ <= limit; ++i) {
    const int64_t *page = tokens.data() + i * pageSize_;
    auto [lo, hi] = byKey_.equal_range(keyOf(parent, page));
    int32_t found = -1;
    for (auto it = lo; it != hi && found < 0; ++it) {
      const Entry &e = entries_.at(it->second);
      if (e.parent == parent && std::equal(e.tokens.begin(), e.tokens.end(), page))
        found = it->second;
    }
    if (found < 0)
      break;
    if (refs_[static_cast<size_t>(found)]++ == 0) {
      idle_.erase(idleAt_.at(found));
      idleAt_.erase(found);
    }
    t.push_back(found);
    parent = entries_.at(found).node;
    cached += pageSize_;
  }
}

Status BlockManager::reserve(int64_t seq, int64_t tokens) {
  std::vector<int32_t> &t = tables_[seq];
  int64_t need = (tokens + pageSize_ - 1) / pageSize_ - static_cast<int64_t>(t.size());
  if (need > freePages())
    return Status::error(StatusCode::kKvCacheFull, "the KV cache is full: sequence " + std::to_string(seq) + " needs " + std::to_string(need) +
                         " more pages of " + std::to_string(pageSize_) + " tokens, " +
                         std::to_string(freePages()) + " of " + std::to_string(pages()) + " are free");
  for (int64_t i = 0; i < need; ++i) {
    int32_t p = take();
    refs_[static_cast<size_t>(p)] = 1;
    t.push_back(p);
  }
  return Status::ok();
}

Status BlockManager::prepareWrite(int64_t seq, int64_t from, int64_t to, std::vector<PageCopy> &copies) {
  auto it = tables_.find(seq);
  if (it == tables_.end() || from >= to)
    return Status::ok();
  std::vector<int32_t> &t = it->second;
  int64_t first = from / pageSize_, last = (to - 1) / pageSize_;
  if (last >= static_cast<int64_t>(t.size()))
    return Status::error("sequence " + std::to_string(seq) + " writes position " + std::to_string(to - 1) +
                         " past its " + std::to_string(t.size()) + " pages");
  int64_t need = 0;
  for (int64_t i = first; i <= last; ++i) {
    int32_t p = t[static_cast<size_t>(i)];
    need += refs_[static_cast<size_t>(p)] > 1 || entries_.count(p);
  }
  if (need > freePages())
    return Status::error(StatusCode::kKvCacheFull, "the KV cache is full: sequence " + std::to_string(seq) + " needs " + std::to_string(need) +
                         " pages to copy shared ones before writing, " + std::to_string(freePages()) + " are free");
  for (int64_t i = first; i <= last; ++i) {
    int32_t p = t[static_cast<size_t>(i)];
    if (refs_[static_cast<size_t>(p)] <= 1 && !entries_.count(p))
      continue;
    int32_t n = take(); // never p: this sequence holds it
    refs_[static_cast<size_t>(n)] = 1;
    copies.push_back({p, n});
    t[static_cast<size_t>(i)] = n;
    drop(p);
  }
  return Status::ok();
}

void BlockManager::publish(int64_t seq, const std::vector<int64_t> &tokens, int64_t written) {
  auto it = tables_.find(seq);
  if (!prefixCaching_ || it == tables_.end())
    return;
  const std::vector<int32_t> &t = it->second;
  uint64_t parent = 0;
  int64_t full = std::min<int64_t>(std::min<int64_t>(written, static_cast<int64_t>(tokens.size())) / pageSize_,
                                   static_cast<int64_t>(t.size()));
  for (int64_t i = 0; i < full; ++i) {
    int32_t p = t[static_cast<size_t>(i)];
    if (auto e = entries_.find(p); e != entries_.end()) {
      parent = e->second.node;
      continue;
    }
    const int64_t *page = tokens.data() + i * pageSize_;
    uint64_t key = keyOf(parent, page);
    // The same prefix may be cached already (two sequences prefilled it at
    // once): keep that entry and follow its chain.
    uint64_t existing = 0;
    auto [lo, hi] = byKey_.equal_range(key);
    for (auto k = lo; k != hi && !existing; ++k) {
      const Entry &e = entries_.at(k->second);
      if (e.parent == parent && std::equal(e.tokens.begin(), e.tokens.end(), page))
        existing = e.node;
    }
    if (existing) {
      parent = existing;
      continue;
    }
    Entry e;
    e.node = nextNode_++;
    e.parent = parent;
    e.key = key;
    e.tokens.assign(page, page + pageSize_);
    parent = e.node;
    entries_[p] = std::move(e);
    byKey_.emplace(key, p);
  }
}

void BlockManager::release(int64_t seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end())
    return;
  for (auto p = it->second.rbegin(); p != it->second.rend(); ++p)
    drop(*p);
  tables_.erase(it);
}

void BlockManager::forget(int32_t page) {
  auto e = page >= 0 && static_cast<size_t>(page) < refs_.size() ? entries_.find(page) : entries_.end();
  if (e == entries_.end())
    return;
  auto [lo, hi] = byKey_.equal_range(e->second.key);
  for (auto it = lo; it != hi; ++it)
    if (it->second == page) {
      byKey_.erase(it);
      break;
    }
  entries_.erase(e);
  if (auto at = idleAt_.find(page); at != idleAt_.end()) {
    idle_.erase(at->second);
    idleAt_.erase(at);
    free_.push_back(page);
  }
}

const std::vector<int32_t> &BlockManager::table(int64_t seq) const {
  static const std::vector<int32_t> none;
  auto it = tables_.find(seq);
  return it == tables_.end() ? none : it->second;
}

} // namespace kiln::rt
