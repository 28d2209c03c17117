import GGML

/// One tensor of a GGUF file: its name, dimensions in ggml order (`ne[0]` is the fastest-varying one, i.e. the
/// reversed PyTorch shape), type, and data offset relative to the start of the data section.
public struct GGUFTensorInfo: Sendable, Equatable {
  /// ggml's `GGML_MAX_NAME` is 64 including the terminating NUL.
  public static let maximumNameLength = 63
  /// ggml's `GGML_MAX_DIMS`.
  public static let maximumDimensions = 4

  public var name: String
  /// `ne[0] ... ne[n_dims-1]`.
  public var dimensions: [Int]
  public var type: GGMLType
  /// Relative to the data section; a multiple of the file's alignment.
  public var offset: Int

  public init(name: String, dimensions: [Int], type: GGMLType, offset: Int = 0) {
    self.name = name
    self.dimensions = dimensions
    self.type = type
    self.offset = offset
  }

  /// The dimensions in PyTorch order (outermost first).
  public var shape: [Int] { dimensions.reversed() }

  /// Elements per row (`ne[0]`).
  public var rowLength: Int { dimensions.first ?? 1 }

  /// Total element count (1 for a tensor without dimensions).
  public var elementCount: Int { dimensions.reduce(1, *) }

  /// Bytes of the tensor's data (`ggml_nbytes`), assuming a validated shape.
  public var byteCount: Int { (elementCount / type.blockSize) * type.blockByteCount }

  /// `dimensions` with trailing 1s removed (at least one kept): the `n_dims` gguf.cpp writes
  /// (`ggml_n_dims`). gguf-py writes the shape it is given instead.
  public static func ggmlDimensions(_ dimensions: [Int]) -> [Int] {
    var trimmed = dimensions
    while trimmed.count > 1, trimmed.last == 1 { trimmed.removeLast() }
    return trimmed
  }
}
