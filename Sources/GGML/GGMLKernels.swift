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
      GGMLKernels(type, importance: false, NonLinearQuantsReference.quantizeF32, FloatKernels.quantizeF32,
        NonLinearQuantsReference.dequantizeF32, FloatKernels.dequantizeF32)
    case .f16:
      GGMLKernels(type, importance: false, NonLinearQuantsReference.quantizeF16, FloatKernels.quantizeF16,
        NonLinearQuantsReference.dequantizeF16, FloatKernels.dequantizeF16)
    case .bf16:
      GGMLKernels(type, importance: false, NonLinearQuantsReference.quantizeBF16, FloatKernels.quantizeBF16,
        NonLinearQuantsReference.dequantizeBF16, FloatKernels.dequantizeBF16)
    case .q8_0:
      GGMLKernels(type, importance: false, LegacyQuantsReference.quantizeQ8_0, LegacyQuantsReference.quantizeQ8_0,
        LegacyQuantsReference.dequantizeQ8_0, LegacyQuantsReference.dequantizeQ8_0)
    case .q4_0:
      GGMLKernels(type, importance: true, LegacyQuantsReference.quantizeQ4_0, LegacyQuantsReference.quantizeQ4_0,
        LegacyQuantsReference.dequantizeQ4_0, LegacyQuantsReference.dequantizeQ4_0)
    case .q4_1:
      GGMLKernels(type, importance: true, LegacyQuantsReference.quantizeQ4_1, LegacyQuantsReference.quantizeQ4_1,
        LegacyQuantsReference.dequantizeQ4_1, LegacyQuantsReference.dequantizeQ4_1)
    case .q5_0:
      GGMLKernels(type, importance: true, LegacyQuantsReference.quantizeQ5_0, LegacyQuantsReference.quantizeQ5_0,
        LegacyQuantsReference.dequantizeQ5_0, LegacyQuantsReference.dequantizeQ5_0)
    case .q5_1:
      GGMLKernels(type, importance: true, LegacyQuantsReference.quantizeQ5_1, LegacyQuantsReference.quantizeQ5_1,
        LegacyQuantsReference.dequantizeQ5_1, LegacyQuantsReference.dequantizeQ5_1)
    case .q2_K:
      GGMLKernels(type, importance: true, KQuantsReference.quantizeQ2_K, KQuantsReference.quantizeQ2_K,
        KQuantsReference.dequantizeQ2_K, KQuantsReference.dequantizeQ2_K)
    case .q3_K:
      GGMLKernels(type, importance: true, KQuantsReference.quantizeQ3_K, KQuantsReference.quantizeQ3_K,
        KQuantsReference.dequantizeQ3_K, KQuantsReference.dequantizeQ3_K)
    case .q4_K:
      GGMLKernels(type, importance: true, KQuantsReference.quantizeQ4_K, KQuantsReference.quantizeQ4_K,
        KQuantsReference.dequantizeQ4_K, KQuantsReference.dequantizeQ4_K)
    case .q5_K:
      GGMLKernels(type, importance: true, KQuantsReference.quantizeQ5_K, KQuantsReference.quantizeQ5_K,
        KQuantsReference.dequantizeQ5_K, KQuantsReference.dequantizeQ5_K)
    case .q6_K:
      GGMLKernels(type, importance: true, KQuantsReference.quantizeQ6_K, KQuantsReference.quantizeQ6_K,
        KQuantsReference.dequantizeQ6_K, KQuantsReference.dequantizeQ6_K)
    case .iq4_nl:
      GGMLKernels(type, importance: true, NonLinearQuantsReference.quantizeIQ4_NL, NonLinearQuantsReference.quantizeIQ4_NL,
        NonLinearQuantsReference.dequantizeIQ4_NL, NonLinearQuantsReference.dequantizeIQ4_NL)
    case .mxfp4:
      GGMLKernels(type, importance: false, NonLinearQuantsReference.quantizeMXFP4, NonLinearQuantsReference.quantizeMXFP4,
        NonLinearQuantsReference.dequantizeMXFP4, NonLinearQuantsReference.dequantizeMXFP4)
    default:
      nil
    }
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
