import TensorCore

/// Counting NaN/infinite values, with a SIMD test that finds none in the common case.
public enum NonFinite {
  /// Non-finite F32 values in `values` and the index of the first.
  public static func scan(_ values: UnsafeBufferPointer<Float>) -> (count: Int, first: Int?) {
    guard let base = values.baseAddress else { return (0, nil) }
    let exponent = SIMD8<UInt32>(repeating: 0x7F80_0000)
    var largest = SIMD8<UInt32>(repeating: 0)
    var index = 0
    while index &+ 8 <= values.count {
      let bits = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<UInt32>.self)
      largest = pointwiseMax(largest, bits & exponent)
      index &+= 8
    }
    var any = largest.max() == 0x7F80_0000
    while index < values.count {
      if !values[index].isFinite { any = true }
      index &+= 1
    }
    guard any else { return (0, nil) }
    var count = 0
    var first: Int?
    for (i, value) in values.enumerated() where !value.isFinite {
      count += 1
      if first == nil { first = i }
    }
    return (count, first)
  }

  /// NaN codes (`S1111111`) among E4M3FN `codes` and the index of the first.
  public static func scanE4M3(_ codes: UnsafeRawBufferPointer) -> (count: Int, first: Int?) {
    guard let base = codes.baseAddress else { return (0, nil) }
    // Per byte, (b & 0x7F) + 1 reaches bit 7 exactly when b & 0x7F == 0x7F; no carry crosses bytes.
    var hits: UInt64 = 0
    var index = 0
    while index &+ 8 <= codes.count {
      let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
      hits |= ((word & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x0101_0101_0101_0101) & 0x8080_8080_8080_8080
      index &+= 8
    }
    var any = hits != 0
    while index < codes.count {
      if codes[index] & 0x7F == 0x7F { any = true }
      index &+= 1
    }
    guard any else { return (0, nil) }
    var count = 0
    var first: Int?
    for (i, code) in codes.enumerated() where code & 0x7F == 0x7F {
      count += 1
      if first == nil { first = i }
    }
    return (count, first)
  }
}

/// Non-finite values in what a cast *wrote*, not only in what it read: an FP8 code times a huge scale
/// (`weight_scale_inv` 3e38) overflows to infinity in BF16 or F32, an F32 value above 65504 becomes an F16
/// infinity, and an FP8 target saturates an infinite source to ±max (finite in the output, but still a
/// value the source did not have). Every one is counted, so `--json`'s `non_finite_values` and the warning
/// tell the truth for every cast target.
extension NonFinite {
  /// Whether `encoded` (elements of `dtype`) holds any NaN or infinity: a SIMD test for the 16- and 32-bit
  /// floats, the E4M3 NaN-code scan, and a decode for the rest.
  public static func anyEncoded(_ encoded: UnsafeRawBufferPointer, dtype: DType) -> Bool {
    switch dtype {
    case .float32:
      return scan(encoded.bindMemory(to: Float.self)).count > 0  // scratch buffers are 64-byte aligned
    case .bfloat16: return anyHalf(encoded, exponent: 0x7F80)
    case .float16: return anyHalf(encoded, exponent: 0x7C00)
    case .float8E4M3FN: return scanE4M3(encoded).count > 0
    default: return true  // decided by the exact count
    }
  }

  /// The elements that are non-finite in `reference` (the F32 values cast) or in `encoded` (the cast's
  /// output, decoded into `scratch`), and the first of them; `(0, nil)` when there are none.
  public static func castResults(
    reference: UnsafeBufferPointer<Float>, encoded: UnsafeRawBufferPointer, dtype: DType,
    scratch: UnsafeMutableBufferPointer<Float>
  ) throws -> (count: Int, first: Int?) {
    let source = scan(reference)
    guard source.count > 0 || anyEncoded(encoded, dtype: dtype) else { return (0, nil) }
    try ElementCodec.decode(encoded, dtype: dtype, into: scratch)
    var count = 0
    var first: Int?
    for i in 0..<min(reference.count, scratch.count) where !reference[i].isFinite || !scratch[i].isFinite {
      count += 1
      if first == nil { first = i }
    }
    return (count, first)
  }

  private static func anyHalf(_ bytes: UnsafeRawBufferPointer, exponent: UInt16) -> Bool {
    guard let base = bytes.baseAddress else { return false }
    let count = bytes.count / 2
    let mask = SIMD16<UInt16>(repeating: exponent)
    var largest = SIMD16<UInt16>(repeating: 0)
    var index = 0
    while index &+ 16 <= count {
      largest = pointwiseMax(largest, base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD16<UInt16>.self) & mask)
      index &+= 16
    }
    if largest.max() == exponent { return true }
    while index < count {
      if base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self) & exponent == exponent { return true }
      index &+= 1
    }
    return false
  }
}

extension NonFinite {
  /// The NaN/infinite BF16 elements of `encoded` and the first of them.
  public static func scanEncodedBF16(_ encoded: UnsafeRawBufferPointer) -> (count: Int, first: Int?) {
    guard anyHalf(encoded, exponent: 0x7F80), let base = encoded.baseAddress else { return (0, nil) }
    var count = 0
    var first: Int?
    for i in 0..<(encoded.count / 2) where base.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self) & 0x7F80 == 0x7F80 {
      count += 1
      if first == nil { first = i }
    }
    return (count, first)
  }
}

extension NonFinite {
  /// The largest finite value of an FP8 cast target (which saturates beyond it), nil for other dtypes.
  public static func saturationLimit(of dtype: DType) -> Float? {
    switch dtype {
    case .float8E4M3FN: return Float8E4M3FN.maxFinite
    case .float8E5M2: return Float8E5M2.maxFinite
    default: return nil
    }
  }

  /// The finite elements of `values` with magnitude above `limit`, and the first of them.
  public static func beyond(_ limit: Float, _ values: UnsafeBufferPointer<Float>) -> (count: Int, first: Int?) {
    var count = 0
    var first: Int?
    for i in values.indices where values[i].isFinite && abs(values[i]) > limit {
      count += 1
      if first == nil { first = i }
    }
    return (count, first)
  }
}
