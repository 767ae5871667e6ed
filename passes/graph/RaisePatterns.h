//===- RaisePatterns.h - raise-patterns, split by family ----------*- C++ -*-===//
#ifndef KILN_PASSES_GRAPH_RAISEPATTERNS_H
#define KILN_PASSES_GRAPH_RAISEPATTERNS_H

#include "mlir/IR/PatternMatch.h"

namespace kiln {

/// Scaled dot-product attention with its mask and GQA repetition
/// (RaiseAttention.cpp).
void populateRaiseAttentionPatterns(mlir::RewritePatternSet &patterns);

/// RoPE in any spelling whose rotation and tables evaluate to RoPE's
/// (RaiseRope.cpp).
void populateRaiseRopePatterns(mlir::RewritePatternSet &patterns);

} // namespace kiln

#endif
