/// Quantizes one row: `count` floats (a whole number of blocks), an optional importance vector of `count`
/// values, and the output blocks.
typealias RowQuantizer = @Sendable (UnsafePointer<Float>, Int, UnsafePointer<Float>?, UnsafeMutableRawPointer) -> Void
/// Decodes `count` elements of whole blocks into floats.
typealias RowDequantizer = @Sendable (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void

/// The kernels of one ggml type, in the spirit of ggml's `type_traits`: quantize rows of F32 exactly as
/// `ggml_quantize_chunk` (and so llama-quantize) does, and dequantize exactly as the type's `to_float`.
///
/// Each type has two implementations that must agree bit for bit: a scalar reference ported statement by
/// statement from ggml-quants.c (golden-tested against ggml's own output) and a fast kernel (tested against
/// the reference). `.fast` is the default.
public struct GGMLKernels: Sendable {
  /// Which of the two twin implementations to run.
  public enum Implementation: Sendable, CaseIterable {
    /// The plain scalar port of ggml's C code.
    case reference
    /// The vectorized kernel (same results).
    case fast
  }

  /// The type these kernels produce.
  public let type: GGMLType
  /// True when an importance matrix (llama-quantize's `--imatrix`) changes the result. Q8_0, MXFP4 and the
  /// float types ignore it, as ggml does.
  public let usesImportance: Bool
  let quantizeReference: RowQuantizer
  let quantizeFast: RowQuantizer
  let dequantizeReference: RowDequantizer
  let dequantizeFast: RowDequantizer

  /// The types Smelt can write, in ggml id order.
  public static let supportedTypes: [GGMLType] = [
    .f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .bf16, .mxfp4,
  ]

  /// The kernels for `type`, or nil when Smelt cannot quantize to it.
  public static func forType(_ type: GGMLType) -> GGMLKernels? {
    switch type {
    case .f32:
      GGMLKernels(type, importance: false, NonLinearQuants.quantizeF32, FloatKernels.quantizeF32,
        NonLinearQuants.dequantizeF32, FloatKernels.dequantizeF32)
    case .f16:
      GGMLKernels(type, importance: false, NonLinearQuants.quantizeF16, FloatKernels.quantizeF16,
        NonLinearQuants.dequantizeF16, FloatKernels.dequantizeF16)
    case .bf16:
      GGMLKernels(type, importance: false, NonLinearQuants.quantizeBF16, FloatKernels.quantizeBF16,
        NonLinearQuants.dequantizeBF16, FloatKernels.dequantizeBF16)
    case .q8_0:
      GGMLKernels(type, importance: false, LegacyQuants.quantizeQ8_0, LegacyQuantsFast.quantizeQ8_0,
        LegacyQuants.dequantizeQ8_0, DequantizeFast.q8_0)
    case .q4_0:
      legacy(type, plain: LegacyQuants.quantizeQ4_0, fast: LegacyQuantsFast.quantizeQ4_0, LegacyQuants.dequantizeQ4_0, { DequantizeFast.q4($0, count: $1, withMin: false, into: $2) }) {
        LegacyQuants.quantizeSymmetricImportance($0, count: $1, importance: $2, maxLevel: 8, into: $3, kernel: $4)
      }
    case .q5_0:
      legacy(type, plain: LegacyQuants.quantizeQ5_0, fast: LegacyQuantsFast.quantizeQ5_0, LegacyQuants.dequantizeQ5_0, { DequantizeFast.q5($0, count: $1, withMin: false, into: $2) }) {
        LegacyQuants.quantizeSymmetricImportance($0, count: $1, importance: $2, maxLevel: 16, into: $3, kernel: $4)
      }
    case .q4_1:
      legacy(type, plain: LegacyQuants.quantizeQ4_1, fast: LegacyQuantsFast.quantizeQ4_1, LegacyQuants.dequantizeQ4_1, { DequantizeFast.q4($0, count: $1, withMin: true, into: $2) }) {
        LegacyQuants.quantizeAffineImportance($0, count: $1, importance: $2, maxLevel: 15, into: $3, kernel: $4)
      }
    case .q5_1:
      legacy(type, plain: LegacyQuants.quantizeQ5_1, fast: LegacyQuantsFast.quantizeQ5_1, LegacyQuants.dequantizeQ5_1, { DequantizeFast.q5($0, count: $1, withMin: true, into: $2) }) {
        LegacyQuants.quantizeAffineImportance($0, count: $1, importance: $2, maxLevel: 31, into: $3, kernel: $4)
      }
    case .q2_K: searching(type, KQuants.quantizeQ2_K, KQuants.dequantizeQ2_K, DequantizeFast.q2_K)
    case .q3_K: searching(type, KQuants.quantizeQ3_K, KQuants.dequantizeQ3_K, DequantizeFast.q3_K)
    case .q4_K: searching(type, KQuants.quantizeQ4_K, KQuants.dequantizeQ4_K, DequantizeFast.q4_K)
    case .q5_K: searching(type, KQuants.quantizeQ5_K, KQuants.dequantizeQ5_K, DequantizeFast.q5_K)
    case .q6_K: searching(type, KQuants.quantizeQ6_K, KQuants.dequantizeQ6_K, DequantizeFast.q6_K)
    case .iq4_nl:
      GGMLKernels(type, importance: true, NonLinearQuants.quantizeIQ4_NL, NonLinearQuantsFast.quantizeIQ4_NL,
        NonLinearQuants.dequantizeIQ4_NL) {
          DequantizeFast.table($0, count: $1, table: NonLinearQuants.iq4nlValues, blockBytes: 18, into: $2) { $0.loadHalf(at: 0) }
        }
    case .mxfp4:
      GGMLKernels(type, importance: false, NonLinearQuants.quantizeMXFP4, NonLinearQuantsFast.quantizeMXFP4,
        NonLinearQuants.dequantizeMXFP4) {
          DequantizeFast.table($0, count: $1, table: NonLinearQuants.mxfp4Values, blockBytes: 17, into: $2) {
            GGMLScalars.e8m0Half($0.loadByte(at: 0))
          }
        }
    default:
      nil
    }
  }

  /// A type whose quantizer runs a per-group scale search with either kernel (the K-quants).
  private static func searching(
    _ type: GGMLType,
    _ quantize: @escaping @Sendable (UnsafePointer<Float>, Int, UnsafePointer<Float>?, UnsafeMutableRawPointer, SearchKernel) -> Void,
    _ dequantize: @escaping RowDequantizer, _ dequantizeFast: @escaping RowDequantizer
  ) -> GGMLKernels {
    GGMLKernels(type, importance: true, { quantize($0, $1, $2, $3, .scalar) }, { quantize($0, $1, $2, $3, .lanes) }, dequantize, dequantizeFast)
  }

  /// A 32-element type: a plain rounding rule without importance (scalar or vectorized), a per-block search
  /// with it.
  private static func legacy(
    _ type: GGMLType, plain: @escaping RowQuantizer, fast: @escaping RowQuantizer, _ dequantize: @escaping RowDequantizer,
    _ dequantizeFast: @escaping RowDequantizer, importance search: @escaping @Sendable (UnsafePointer<Float>, Int, UnsafePointer<Float>, UnsafeMutableRawPointer, SearchKernel) -> Void
  ) -> GGMLKernels {
    GGMLKernels(
      type, importance: true,
      { x, n, weights, y in if let weights { search(x, n, weights, y, .scalar) } else { plain(x, n, nil, y) } },
      { x, n, weights, y in if let weights { search(x, n, weights, y, .lanes) } else { fast(x, n, nil, y) } },
      dequantize, dequantizeFast)
  }

  private init(
    _ type: GGMLType, importance: Bool, _ quantizeReference: @escaping RowQuantizer, _ quantizeFast: @escaping RowQuantizer,
    _ dequantizeReference: @escaping RowDequantizer, _ dequantizeFast: @escaping RowDequantizer
  ) {
    self.type = type
    self.usesImportance = importance
    self.quantizeReference = quantizeReference
    self.quantizeFast = quantizeFast
    self.dequantizeReference = dequantizeReference
    self.dequantizeFast = dequantizeFast
  }

  /// Quantizes `rows` (row-major, `rowLength` floats per row) into `output`, as
  /// `ggml_quantize_chunk(type, rows, output, 0, rowCount, rowLength, importance)`.
  ///
  /// - Parameters:
  ///   - importance: `rowLength` importance values applied to every row (one expert's slice of llama.cpp's
  ///     imatrix), or nil. Ignored by types that do not use it.
  ///   - output: exactly `rowCount · type.rowByteCount(rowLength)` bytes.
  /// - Throws: `GGMLError` when the row length is not a whole number of blocks or a buffer has the wrong size.
  public func quantize(
    _ rows: UnsafeBufferPointer<Float>, rowLength: Int, importance: UnsafeBufferPointer<Float>? = nil,
    into output: UnsafeMutableRawBufferPointer, implementation: Implementation = .fast
  ) throws(GGMLError) {
    let rowBytes = try checkedRowBytes(rowLength: rowLength, elementCount: rows.count, byteCount: output.count)
    if let importance, importance.count != rowLength {
      throw .importanceLength(type: type, expected: rowLength, actual: importance.count)
    }
    guard let source = rows.baseAddress, let destination = output.baseAddress else { return }
    let weights = usesImportance ? importance?.baseAddress : nil
    let kernel = implementation == .fast ? quantizeFast : quantizeReference
    for row in 0..<rows.count / rowLength {
      kernel(source + row * rowLength, rowLength, weights, destination + row * rowBytes)
    }
  }

  /// Decodes whole rows of blocks into floats, as the type's `to_float`.
  /// - Throws: `GGMLError` when the sizes do not match.
  public func dequantize(
    _ blocks: UnsafeRawBufferPointer, rowLength: Int, into output: UnsafeMutableBufferPointer<Float>,
    implementation: Implementation = .fast
  ) throws(GGMLError) {
    let rowBytes = try checkedRowBytes(rowLength: rowLength, elementCount: output.count, byteCount: blocks.count)
    guard let source = blocks.baseAddress, let destination = output.baseAddress else { return }
    let kernel = implementation == .fast ? dequantizeFast : dequantizeReference
    for row in 0..<output.count / rowLength {
      kernel(source + row * rowBytes, rowLength, destination + row * rowLength)
    }
  }

  private func checkedRowBytes(rowLength: Int, elementCount: Int, byteCount: Int) throws(GGMLError) -> Int {
    guard rowLength > 0, let rowBytes = type.rowByteCount(elementCount: rowLength) else {
      throw .rowLength(type: type, rowLength: rowLength)
    }
    guard elementCount % rowLength == 0 else { throw .partialRow(elementCount: elementCount, rowLength: rowLength) }
    let rowCount = elementCount / rowLength
    guard byteCount == rowCount * rowBytes else {
      throw .byteCount(type: type, rowCount: rowCount, rowLength: rowLength, expected: rowCount * rowBytes, actual: byteCount)
    }
    return rowBytes
  }
}

/// Misuse of the ggml kernels: sizes that do not describe whole blocks.
public enum GGMLError: Error, Equatable, CustomStringConvertible {
  /// `rowLength` is not a positive multiple of the type's block size.
  case rowLength(type: GGMLType, rowLength: Int)
  /// The float buffer is not a whole number of rows.
  case partialRow(elementCount: Int, rowLength: Int)
  /// The block buffer does not hold exactly the rows.
  case byteCount(type: GGMLType, rowCount: Int, rowLength: Int, expected: Int, actual: Int)
  /// The importance vector does not have one value per column.
  case importanceLength(type: GGMLType, expected: Int, actual: Int)

  public var description: String {
    switch self {
    case .rowLength(let type, let rowLength):
      "\(type) needs rows of a multiple of \(type.blockSize) elements, got \(rowLength)"
    case .partialRow(let elementCount, let rowLength):
      "\(elementCount) elements are not a whole number of rows of \(rowLength)"
    case .byteCount(let type, let rowCount, let rowLength, let expected, let actual):
      "\(rowCount) rows of \(rowLength) \(type) elements take \(expected) bytes, the buffer has \(actual)"
    case .importanceLength(let type, let expected, let actual):
      "the importance vector for \(type) needs \(expected) values (one per column), got \(actual)"
    }
  }
}
