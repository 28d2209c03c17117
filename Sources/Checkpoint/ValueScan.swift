import Synchronization
import TensorCore

/// Bit-pattern checks over raw tensor bytes, for `smelt verify --deep`: NaN/infinity in floating tensors,
/// zero/negative/NaN values in scale tensors. Works on the stored encoding directly (no decode), so every
/// floating dtype is covered, including the FP8 variants, and a scan runs at memory speed.
public enum ValueScan {
  /// The first offending element of a tensor and how many there are.
  public struct Result: Sendable, Equatable {
    /// Flat (row-major) index of the first offending element.
    public var firstIndex: Int
    /// Number of offending elements.
    public var count: Int
    /// The stored bits of the first offending element, as hex (for example `0x7fc0`).
    public var firstBits: String
  }

  /// How a dtype encodes non-finite and non-positive values. `nil` for dtypes with neither (integers,
  /// F4/F6).
  struct Encoding {
    /// Bytes per scanned unit (for C64, one F32 component; two units per element).
    var unitByteCount: Int
    var unitsPerElement: Int
    var nonFinite: @Sendable (UInt64) -> Bool
    var nonPositive: @Sendable (UInt64) -> Bool
  }

  static func encoding(of dtype: DType) -> Encoding? {
    func float(_ bytes: Int, exponent: UInt64, sign: UInt64) -> Encoding {
      Encoding(
        unitByteCount: bytes, unitsPerElement: 1, nonFinite: { $0 & exponent == exponent },
        nonPositive: { $0 & sign != 0 || $0 & ~sign == 0 })
    }
    switch dtype {
    case .float64: return float(8, exponent: 0x7FF0_0000_0000_0000, sign: 0x8000_0000_0000_0000)
    case .float32: return float(4, exponent: 0x7F80_0000, sign: 0x8000_0000)
    case .complex64:
      var encoding = float(4, exponent: 0x7F80_0000, sign: 0x8000_0000)
      encoding.unitsPerElement = 2
      return encoding
    case .float16: return float(2, exponent: 0x7C00, sign: 0x8000)
    case .bfloat16: return float(2, exponent: 0x7F80, sign: 0x8000)
    // E4M3FN has no infinity; its NaN is S.1111.111.
    case .float8E4M3FN:
      return Encoding(
        unitByteCount: 1, unitsPerElement: 1, nonFinite: { $0 & 0x7F == 0x7F }, nonPositive: { $0 & 0x80 != 0 || $0 == 0 })
    case .float8E5M2: return float(1, exponent: 0x7C, sign: 0x80)
    // E8M0 is an unsigned power of two: always positive, 0xFF is NaN.
    case .float8E8M0FNU:
      return Encoding(unitByteCount: 1, unitsPerElement: 1, nonFinite: { $0 == 0xFF }, nonPositive: { $0 == 0xFF })
    // FNUZ formats: no infinity, no negative zero; 0x80 is the single NaN.
    case .float8E4M3FNUZ, .float8E5M2FNUZ:
      return Encoding(
        unitByteCount: 1, unitsPerElement: 1, nonFinite: { $0 == 0x80 }, nonPositive: { $0 & 0x80 != 0 || $0 == 0 })
    default:
      return nil
    }
  }

  /// True when `dtype` can hold a NaN or an infinity.
  public static func canBeNonFinite(_ dtype: DType) -> Bool { encoding(of: dtype) != nil }

  /// The NaN/infinity elements of a tensor of `dtype` stored in `bytes`, or `nil` if all are finite.
  public static func nonFinite(_ bytes: UnsafeRawBufferPointer, dtype: DType) -> Result? {
    guard let encoding = encoding(of: dtype) else { return nil }
    return scan(bytes, encoding, encoding.nonFinite)
  }

  /// The elements of a scale tensor that are not strictly positive finite numbers (zero, negative, NaN,
  /// infinity), or `nil` if there are none. `U8` scales are read as E8M0 exponents (gpt-oss MXFP4).
  public static func nonPositive(_ bytes: UnsafeRawBufferPointer, dtype: DType) -> Result? {
    let effective = dtype == .uint8 ? DType.float8E8M0FNU : dtype
    guard let encoding = encoding(of: effective) else { return nil }
    let nonFinite = encoding.nonFinite
    let nonPositive = encoding.nonPositive
    return scan(bytes, encoding) { nonFinite($0) || nonPositive($0) }
  }

  /// The elements of a signed scale tensor (MLX affine `scales`, which are negative when a group's
  /// larger-magnitude extreme is negative) that are zero, NaN or infinite, or `nil` if there are none.
  public static func zeroOrNonFinite(_ bytes: UnsafeRawBufferPointer, dtype: DType) -> Result? {
    guard let encoding = encoding(of: dtype) else { return nil }
    let nonFinite = encoding.nonFinite
    let nonPositive = encoding.nonPositive
    // With the sign bit cleared, only a zero (+0 or -0) is still non-positive.
    let signMask: UInt64 = 1 << UInt64(encoding.unitByteCount * 8 - 1)
    return scan(bytes, encoding) { bits in nonFinite(bits) || nonPositive(bits & ~signMask) }
  }

  /// The values of a scale tensor that break the one rule for scales, which `convert` (refusing the input,
  /// `Checkpoint.checkScales`) and `verify --deep` (a `non-positive-scale` finding) both apply: positive
  /// finite numbers, or for the signed MLX affine scales nonzero finite ones. `nil` when `name` is no scale
  /// tensor or every value keeps the rule; else the bad values and the rule in words.
  public static func scaleProblem(_ name: String, among names: Set<String>, bytes: UnsafeRawBufferPointer, dtype: DType)
    -> (bad: Result, expectation: String)?
  {
    if isSignedScaleTensor(name, among: names) {
      return zeroOrNonFinite(bytes, dtype: dtype).map { ($0, "nonzero finite numbers (MLX affine scales may be negative, never zero)") }
    }
    guard isScaleTensor(name) else { return nil }
    return nonPositive(bytes, dtype: dtype).map { ($0, "positive finite numbers") }
  }

  /// True for a tensor `scaleProblem` applies its rule to (instead of the plain NaN/infinity scan).
  public static func isScale(_ name: String, among names: Set<String>) -> Bool {
    isScaleTensor(name) || isSignedScaleTensor(name, among: names)
  }

  /// True for an MLX affine scale tensor: `….scales` beside a `….biases` of the same module. Its values are
  /// signed (see `zeroOrNonFinite`).
  public static func isSignedScaleTensor(_ name: String, among names: Set<String>) -> Bool {
    guard name.hasSuffix(".scales") || name == "scales" else { return false }
    return names.contains(String(name.dropLast("scales".count)) + "biases")
  }

  private static func scan(_ bytes: UnsafeRawBufferPointer, _ encoding: Encoding, _ isBad: @Sendable (UInt64) -> Bool)
    -> Result?
  {
    let width = encoding.unitByteCount
    let unitCount = bytes.count / width
    // Per chunk: (first unit index, count); merged under a lock once per chunk.
    let found = Mutex<(first: Int, bits: UInt64, count: Int)?>(nil)
    let base = UInt(bitPattern: bytes.baseAddress)
    Parallel.forEachChunk(count: unitCount, minimumChunk: 1 << 20) { range in
      guard let start = UnsafeRawPointer(bitPattern: base) else { return }
      var first = -1
      var firstBits: UInt64 = 0
      var count = 0
      for unit in range {
        let bits = load(start, unit * width, width)
        if isBad(bits) {
          if first < 0 {
            first = unit
            firstBits = bits
          }
          count += 1
        }
      }
      guard count > 0 else { return }
      found.withLock { current in
        if let existing = current {
          current = existing.first < first
            ? (existing.first, existing.bits, existing.count + count) : (first, firstBits, existing.count + count)
        } else {
          current = (first, firstBits, count)
        }
      }
    }
    guard let result = found.withLock({ $0 }) else { return nil }
    let hex = String(result.bits, radix: 16)
    let padded = String(repeating: "0", count: max(0, width * 2 - hex.count)) + hex
    return Result(firstIndex: result.first / encoding.unitsPerElement, count: result.count, firstBits: "0x" + padded)
  }

  @inline(__always)
  private static func load(_ base: UnsafeRawPointer, _ offset: Int, _ width: Int) -> UInt64 {
    switch width {
    case 1: return UInt64(base.load(fromByteOffset: offset, as: UInt8.self))
    case 2: return UInt64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    case 4: return UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    default: return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
  }

  /// True for tensor names that hold quantization scales, which must be positive: DeepSeek's
  /// `weight_scale_inv`, compressed-tensors' `weight_scale` / `weight_scale_2` / `input_scale`, GPTQ/MLX/
  /// gpt-oss `scales`.
  public static func isScaleTensor(_ name: String) -> Bool {
    let leaf = name.split(separator: ".").last.map(String.init) ?? name
    return ["weight_scale_inv", "weight_scale", "weight_scale_2", "input_scale", "scales", "scale"].contains(leaf)
      || leaf.hasSuffix("_scales")
  }
}
