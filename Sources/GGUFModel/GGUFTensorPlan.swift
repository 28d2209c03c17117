/// One tensor of a GGUF file to be written, and where its elements come from in the source checkpoint.
/// Dimensions are in ggml order (`ne[0]` fastest); a Hugging Face tensor of shape `[rows, cols]` has
/// `ne = [cols, rows]` with the same bytes.
public struct GGUFTensorPlan: Sendable, Equatable {
  /// How the GGUF tensor's elements are gathered from Hugging Face tensors (all row-major).
  public enum Source: Sendable, Equatable {
    /// One tensor, same element order.
    case tensor(String)
    /// Tensors of equal shape stacked on a new outermost dimension, in list order (routed experts:
    /// `ne = [in, out, count]`).
    case stacked([String])
    /// The key half of an MLA `kv_b_proj` `[heads·(nope + v), kvLoraRank]`, per head transposed:
    /// `ne = [nope, kvLoraRank, heads]`, element `(h, r, c) = W[h·(nope + v) + c, r]`.
    case mlaKeyHalf(String, heads: Int, nope: Int, value: Int)
    /// The value half: `ne = [kvLoraRank, value, heads]`, element `(h, r, c) = W[h·(nope + v) + nope + r, c]`.
    case mlaValueHalf(String, heads: Int, nope: Int, value: Int)
    /// Every expert of a fused expert tensor, the rows `offset, offset + stride, ...` of each (gpt-oss's
    /// interleaved `gate_up_proj`: gate = stride 2 offset 0, up = stride 2 offset 1; `down_proj`: stride 1).
    /// The source is `[E, M, C]` output-major (the MXFP4 release), `[E, C, M]` when `inputMajor` (transformers'
    /// plain layout, transposed per expert here), or `[E, M]` for a bias (C = 1): `ne = [C, M / stride, E]`,
    /// element `(e, j, c)` = source `(e, stride·j + offset, c)`.
    case fusedExperts(String, stride: Int, offset: Int, inputMajor: Bool)

    /// Every source tensor this one reads.
    public var tensorNames: [String] {
      switch self {
      case .tensor(let name), .mlaKeyHalf(let name, _, _, _), .mlaValueHalf(let name, _, _, _), .fusedExperts(let name, _, _, _): [name]
      case .stacked(let names): names
      }
    }

    /// The same gathering from tensors renamed by `rename` (a wrapper's prefixed names for Hugging Face ones).
    public func renamingTensors(_ rename: (String) -> String) -> Source {
      switch self {
      case .tensor(let name): .tensor(rename(name))
      case .stacked(let names): .stacked(names.map(rename))
      case .mlaKeyHalf(let name, let heads, let nope, let value): .mlaKeyHalf(rename(name), heads: heads, nope: nope, value: value)
      case .mlaValueHalf(let name, let heads, let nope, let value): .mlaValueHalf(rename(name), heads: heads, nope: nope, value: value)
      case .fusedExperts(let name, let stride, let offset, let inputMajor):
        .fusedExperts(rename(name), stride: stride, offset: offset, inputMajor: inputMajor)
      }
    }
  }

  public var name: String
  public var dimensions: [Int]
  public var source: Source

  public init(name: String, dimensions: [Int], source: Source) {
    self.name = name
    self.dimensions = dimensions
    self.source = source
  }

  public var elementCount: Int { dimensions.reduce(1, *) }
}
