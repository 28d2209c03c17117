/// Where the forward pass gets its weights: one F32 tensor at a time, by its Hugging Face name
/// (`model.layers.3.mlp.experts.7.down_proj.weight`).
///
/// Implementations dequantize whatever format the checkpoint uses. The forward pass asks for one layer's
/// tensors at a time (routed experts one at a time, only those some token selects) and drops them before the
/// next layer, so a provider that reads lazily keeps memory at about one layer.
public protocol WeightProvider {
  /// The tensor `name` as F32; throws `ReferenceModelError.missingWeight` (or the provider's own error).
  func weight(_ name: String) throws -> FloatTensor
  /// Whether a tensor `name` exists.
  func contains(_ name: String) -> Bool
  /// Rows `rows` of the 2-D tensor `name` (the embedding rows of a batch, a slice of `lm_head`).
  ///
  /// The default loads the whole tensor and slices it; providers over large files should override it.
  func weightRows(_ name: String, rows: Range<Int>) throws -> FloatTensor
  /// The (dequantized) shape of `name`, without reading its data where the provider can.
  func shape(of name: String) throws -> [Int]
  /// The 2-D weight `name` of a linear layer for `matmul`: providers over BF16 or FP8-block checkpoints return
  /// the encoded storage, which the matmul dequantizes per tile. The default is `weight(name)` in F32.
  func linearWeight(_ name: String) throws -> LinearWeight
  /// Whether `name` is stored in a quantized format. A family's fused expert tensors may order their dims
  /// differently quantized and plain (gpt-oss: MXFP4 `[E, out, in]`, BF16 `[E, in, out]`). Default: false.
  func isQuantized(_ name: String) -> Bool
}

extension WeightProvider {
  public func isQuantized(_ name: String) -> Bool { false }

  /// The default loads the tensor.
  public func shape(of name: String) throws -> [Int] { try weight(name).shape }

  public func linearWeight(_ name: String) throws -> LinearWeight { try LinearWeight(try weight(name)) }

  public func weightRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    let whole = try weight(name)
    guard whole.shape.count == 2, rows.lowerBound >= 0, rows.upperBound <= whole.shape[0] else {
      throw ReferenceModelError.weightShapeMismatch(
        name: name, expected: [rows.upperBound, whole.shape.last ?? 0], actual: whole.shape)
    }
    let width = whole.shape[1]
    let slice = Array(whole.values[(rows.lowerBound * width)..<(rows.upperBound * width)])
    return try FloatTensor(shape: [rows.count, width], values: slice)
  }
}

/// Weights held in a dictionary: for tests and for small models built in memory.
public struct InMemoryWeightProvider: WeightProvider, Sendable {
  /// The tensors by name.
  public var tensors: [String: FloatTensor]

  /// A provider serving `tensors`.
  public init(_ tensors: [String: FloatTensor] = [:]) { self.tensors = tensors }

  public func weight(_ name: String) throws -> FloatTensor {
    guard let tensor = tensors[name] else { throw ReferenceModelError.missingWeight(name: name) }
    return tensor
  }

  public func contains(_ name: String) -> Bool { tensors[name] != nil }
}
