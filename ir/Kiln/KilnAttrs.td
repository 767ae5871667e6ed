//===- KilnAttrs.td - enums and attributes of the kiln dialect -*- tablegen -*-===//
#ifndef KILN_ATTRS_TD
#define KILN_ATTRS_TD

include "ir/Kiln/KilnDialect.td"
include "mlir/IR/EnumAttr.td"

def Kiln_RopeStyle : I32EnumAttr<"RopeStyle", "how rotary pairs are formed", [
    I32EnumAttrCase<"Neox", 0, "neox">, // rotate-half: (i, i + d/2)
    I32EnumAttrCase<"GptJ", 1, "gptj">  // interleaved: (2i, 2i + 1)
  ]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}
def Kiln_RopeStyleAttr : EnumAttr<Kiln_Dialect, Kiln_RopeStyle, "rope_style">;

def Kiln_RopeScaling : I32EnumAttr<"RopeScaling", "rotary frequency scaling", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Linear", 1, "linear">,
    I32EnumAttrCase<"Llama3", 2, "llama3">,
    I32EnumAttrCase<"Yarn", 3, "yarn">
  ]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}
def Kiln_RopeScalingAttr : EnumAttr<Kiln_Dialect, Kiln_RopeScaling, "rope_scaling">;

def Kiln_ComparePredicate : I32EnumAttr<"ComparePredicate", "comparison", [
    I32EnumAttrCase<"eq", 0>, I32EnumAttrCase<"ne", 1>,
    I32EnumAttrCase<"lt", 2>, I32EnumAttrCase<"le", 3>,
    I32EnumAttrCase<"gt", 4>, I32EnumAttrCase<"ge", 5>
  ]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}
def Kiln_ComparePredicateAttr
    : EnumAttr<Kiln_Dialect, Kiln_ComparePredicate, "compare_predicate">;

def Kiln_QuantPacking : I32EnumAttr<"QuantPacking", "how quantized weights are packed in int32 words", [
    I32EnumAttrCase<"Gptq", 0, "gptq">,      // along K, low bits first; zeros stored minus one
    I32EnumAttrCase<"GptqV2", 1, "gptq_v2">, // as gptq, zeros stored as they are
    I32EnumAttrCase<"Awq", 2, "awq">         // along N, 4 bits in the order 0 2 4 6 1 3 5 7
  ]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}
def Kiln_QuantPackingAttr : EnumAttr<Kiln_Dialect, Kiln_QuantPacking, "quant_packing">;

#endif // KILN_ATTRS_TD
