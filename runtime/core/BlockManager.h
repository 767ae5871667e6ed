//===- BlockManager.h - the KV pool's pages and prefix sharing --*- C++ -*-===//
//
// The KV cache is a pool of pages of `pageSize` tokens; each sequence has a
// block table of pages. Pages are reference-counted so that sequences whose
// prompts begin alike share the pages of that prefix:
//
// - When a sequence's full pages have been written, publish() enters them in
//   the prefix cache, keyed by their tokens and by the page before them (a
//   chain: a page matches only after the same whole prefix).
// - admit() gives a new sequence the cached pages its tokens begin with and
//   says how many tokens' KV are already there; the caller prefills the rest.
// - A cached or shared page is read-only: prepareWrite() gives the writer a
//   private copy first (copy-on-write) and lists the copies the device must
//   make before the step.
// - A cached page no sequence holds stays cached until the pool runs out of
//   free pages; then the least recently released one is reused.
//
// Not thread-safe: one caller (the step loop) at a time.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CORE_BLOCKMANAGER_H
#define KILN_RUNTIME_CORE_BLOCKMANAGER_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <list>
#include <map>
#include <unordered_map>
#include <vector>

namespace kiln::rt {

/// Copy page `from` to page `to` (every layer's K and V) before the step.
struct PageCopy {
  int32_t from = 0, to = 0;
};

class BlockManager {
public:
  BlockManager(int64_t pages, int64_t pageSize, bool prefixCaching = true);

  /// Starts sequence `seq` (no table yet) with the cached pages `tokens`
  /// begins with, at most `maxCached` tokens' worth; `cached` receives the
  /// number of tokens whose KV those pages hold (a multiple of the page).
  void admit(int64_t seq, const std::vector<int64_t> &tokens, int64_t maxCached, int64_t &cached);
  /// Grows `seq`'s table to hold `tokens` tokens; an error, and nothing
  /// changed, when the pool cannot.
  Status reserve(int64_t seq, int64_t tokens);
  /// Before a step writes positions [from, to) of `seq`: the pages holding
  /// them that are shared or cached are replaced by private copies, listed
  /// in `copies`. An error, and nothing changed, when no page is free.
  Status prepareWrite(int64_t seq, int64_t from, int64_t to, std::vector<PageCopy> &copies);
  /// Enters the full pages among `seq`'s first `written` tokens (`tokens`)
  /// in the prefix cache.
  void publish(int64_t seq, const std::vector<int64_t> &tokens, int64_t written);
  /// Drops `seq`'s table; its pages go back to the pool (cached ones stay
  /// cached until their page is needed).
  void release(int64_t seq);
  /// Takes `page` out of the prefix cache (its KV is about to be written by
  /// someone who did not take it from here); unreferenced, it is free.
  void forget(int32_t page);
  /// Whether admit() looks up and publish() enters the prefix cache (what
  /// is cached stays).
  void setPrefixCaching(bool on) { prefixCaching_ = on; }
  /// Sequences holding pages now.
  size_t sequences() const { return tables_.size(); }

  const std::vector<int32_t> &table(int64_t seq) const;
  /// Pages a reservation can take: free ones and cached ones nobody holds.
  int64_t freePages() const { return static_cast<int64_t>(free_.size() + idle_.size()); }
  int64_t pages() const { return static_cast<int64_t>(refs_.size()); }
  int64_t pageSize() const { return pageSize_; }
  /// How many sequences hold `page`, and whether it is in the prefix cache.
  int32_t references(int32_t page) const { return refs_[static_cast<size_t>(page)]; }
  bool cached(int32_t page) const { return entries_.count(page) != 0; }

private:
  struct Entry {
    uint64_t node = 0, parent = 0, key = 0; // parent 0: the first page
    std::vector<int64_t> tokens;
  };
  uint64_t keyOf(uint64_t parent, const int64_t *tokens) const;
  /// A page for writing: a free one, else the least recently idle cached
  /// one (leaving the cache); -1 when there is none.
  int32_t take();
  void drop(int32_t page); // one reference fewer

  int64_t pageSize_;
  bool prefixCaching_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;                          // not cached, unreferenced
  std::list<int32_t> idle_;                            // cached, unreferenced, oldest first
  std::unordered_map<int32_t, std::list<int32_t>::iterator> idleAt_;
  std::unordered_map<int32_t, Entry> entries_;         // cached pages
  std::unordered_multimap<uint64_t, int32_t> byKey_;   // key -> cached page
  std::map<int64_t, std::vector<int32_t>> tables_;
  uint64_t nextNode_ = 1;
};

} // namespace kiln::rt

#endif
