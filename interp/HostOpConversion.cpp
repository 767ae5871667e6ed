//===- HostOpConversion.cpp - a kiln op as a host::HostOp -----------------===//
#include "interp/HostOpConversion.h"

#include "interp/Interpreter.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;

namespace kiln::interp {

namespace {

Status convertAttr(Attribute a, host::HostAttr &h) {
  using K = host::HostAttr::Kind;
  if (auto i = dyn_cast<IntegerAttr>(a)) {
    if (i.getType().isInteger(1)) {
      h.kind = K::Bool;
      h.b = i.getValue().getBoolValue();
    } else {
      h.kind = K::Int;
      h.i = i.getValue().getSExtValue();
    }
  } else if (auto f = dyn_cast<FloatAttr>(a)) {
    h.kind = K::Float;
    h.f = f.getValueAsDouble();
  } else if (isa<UnitAttr>(a)) {
    h.kind = K::Bool;
    h.b = true;
  } else if (auto b = dyn_cast<BoolAttr>(a)) {
    h.kind = K::Bool;
    h.b = b.getValue();
  } else if (auto s = dyn_cast<StringAttr>(a)) {
    h.kind = K::Str;
    h.s = s.getValue().str();
  } else if (auto v = dyn_cast<DenseI64ArrayAttr>(a)) {
    h.kind = K::Ints;
    h.ints.assign(v.asArrayRef().begin(), v.asArrayRef().end());
  } else if (auto v = dyn_cast<DenseI32ArrayAttr>(a)) {
    h.kind = K::Ints;
    h.ints.assign(v.asArrayRef().begin(), v.asArrayRef().end());
  } else if (auto v = dyn_cast<DenseF64ArrayAttr>(a)) {
    h.kind = K::Floats;
    h.floats.assign(v.asArrayRef().begin(), v.asArrayRef().end());
  } else if (auto e = dyn_cast<RopeStyleAttr>(a)) {
    h.kind = K::Str;
    h.s = stringifyEnum(e.getValue()).str();
  } else if (auto e = dyn_cast<RopeScalingAttr>(a)) {
    h.kind = K::Str;
    h.s = stringifyEnum(e.getValue()).str();
  } else if (auto e = dyn_cast<QuantPackingAttr>(a)) {
    h.kind = K::Str;
    h.s = stringifyEnum(e.getValue()).str();
  } else if (auto e = dyn_cast<ComparePredicateAttr>(a)) {
    h.kind = K::Str;
    h.s = stringifyEnum(e.getValue()).str();
  } else {
    return Status::error("an attribute of a kind the host cannot take");
  }
  return Status::ok();
}

} // namespace

Status toHostOp(Operation *op, host::HostOp &out) {
  out = host::HostOp();
  out.name = op->getName().stripDialect().str();
  NamedAttrList attrs(op->getAttrDictionary());
  op->getName().populateDefaultAttrs(attrs);
  for (NamedAttribute a : attrs) {
    if (isa<ConstantOp>(op) && a.getName() == "value")
      continue;
    host::HostAttr h;
    if (Status s = convertAttr(a.getValue(), h); !s)
      return Status::error("kiln." + out.name + " attribute '" + a.getName().str() + "': " + s.message());
    out.attrs[a.getName().str()] = h;
  }
  for (Type t : op->getResultTypes()) {
    auto rt = dyn_cast<RankedTensorType>(t);
    FailureOr<host::DType> dt = rt ? dtypeOf(rt.getElementType()) : FailureOr<host::DType>(failure());
    if (failed(dt))
      return Status::error("kiln." + out.name + " has a result of a type the host cannot hold");
    out.resultTypes.push_back(*dt);
    host::Shape s;
    for (int64_t d : rt.getShape())
      s.push_back(ShapedType::isDynamic(d) ? -1 : d);
    out.resultShapes.push_back(s);
  }
  if (auto c = dyn_cast<ConstantOp>(op)) {
    auto attr = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!attr)
      return Status::error("kiln.constant: only dense constants are supported");
    host::Shape shape(attr.getType().getShape().begin(), attr.getType().getShape().end());
    out.value = host::Tensor(out.resultTypes[0], shape);
    int64_t i = 0;
    if (isa<FloatType>(attr.getElementType())) {
      for (APFloat v : attr.getValues<APFloat>())
        out.value.set(i++, v.convertToDouble());
    } else {
      bool isBool = attr.getElementType().isInteger(1);
      for (APInt v : attr.getValues<APInt>())
        out.value.setInt(i++, isBool ? static_cast<int64_t>(v.getBoolValue()) : v.getSExtValue());
    }
  }
  return Status::ok();
}

} // namespace kiln::interp
