import CMath

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
    /// One tensor with a Gated DeltaNet's value heads moved from grouped to tiled order along one axis (llama.cpp's
    /// `_LinearAttentionVReorderBase`): same shape, rows (or columns) permuted by `reorder`.
    case tiledValueHeads(String, HeadReorder)

    /// Every source tensor this one reads.
    public var tensorNames: [String] {
      switch self {
      case .tensor(let name), .mlaKeyHalf(let name, _, _, _), .mlaValueHalf(let name, _, _, _), .fusedExperts(let name, _, _, _),
        .tiledValueHeads(let name, _):
        [name]
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
      case .tiledValueHeads(let name, let reorder): .tiledValueHeads(rename(name), reorder)
      }
    }
  }

  public var name: String
  public var dimensions: [Int]
  public var source: Source
  /// Arithmetic applied to every element once gathered, as the converter's `modify_tensors` does it (in F32).
  public var transform: ElementTransform?

  public init(name: String, dimensions: [Int], source: Source, transform: ElementTransform? = nil) {
    self.name = name
    self.dimensions = dimensions
    self.source = source
    self.transform = transform
  }

  public var elementCount: Int { dimensions.reduce(1, *) }
}

/// Element-wise arithmetic a converter applies to a tensor's values (in F32, after dequantization).
public enum ElementTransform: String, Sendable, Equatable {
  /// `-exp(x)`: a Gated DeltaNet's `A_log` stored as llama.cpp's `ssm_a`.
  case negatedExponential
  /// `x + 1`: a zero-centred RMSNorm gain (Qwen3.5's `(1 + w)` norms) stored as a plain one.
  case plusOne

  /// Applies the transform to `values` in place.
  public func apply(_ values: inout [Float]) {
    switch self {
    case .negatedExponential: for i in values.indices { values[i] = -CMath.exp(values[i]) }
    case .plusOne: for i in values.indices { values[i] += 1 }
    }
  }
}

/// The permutation that moves a Gated DeltaNet's value heads from grouped order (the `valuesPerKey` value heads
/// of key head 0, then of key head 1, ...) to tiled order (value head 0 of every key head, then value head 1, ...),
/// along the rows or the columns of a matrix, after `leading` indices that stay in place (the q and k rows of
/// `in_proj_qkv`, the q and k channels of `conv1d`). Each head is `width` consecutive indices (1 for the
/// per-head `in_proj_a` / `in_proj_b` rows and `A_log` / `dt_bias` entries).
public struct HeadReorder: Sendable, Equatable, CustomStringConvertible {
  public enum Axis: String, Sendable, Equatable { case rows, columns }
  public var axis: Axis
  public var leading: Int
  public var keyHeads: Int
  public var valuesPerKey: Int
  public var width: Int

  public init(axis: Axis, leading: Int = 0, keyHeads: Int, valuesPerKey: Int, width: Int) {
    self.axis = axis
    self.leading = leading
    self.keyHeads = keyHeads
    self.valuesPerKey = valuesPerKey
    self.width = width
  }

  /// Whether the permutation moves anything (one key head, or one value head per key head, keeps the order).
  public var isIdentity: Bool { keyHeads == 1 || valuesPerKey == 1 }

  /// The source index of output index `index` along the permuted axis: output `(j, g, d)` (value head `j` of
  /// key head `g`, element `d`) is source `(g, j, d)`.
  public func sourceIndex(of index: Int) -> Int {
    guard index >= leading else { return index }
    let i = index - leading
    let head = i / width, d = i % width
    let j = head / keyHeads, g = head % keyHeads
    return leading + (g * valuesPerKey + j) * width + d
  }

  /// Output indices `range` as runs of consecutive source indices: `(output, source, count)`.
  public func sourceRuns(of range: Range<Int>) -> [(output: Int, source: Int, count: Int)] {
    var runs: [(output: Int, source: Int, count: Int)] = []
    for index in range {
      let source = sourceIndex(of: index)
      if let last = runs.last, last.source + last.count == source {
        runs[runs.count - 1].count += 1
      } else {
        runs.append((index, source, 1))
      }
    }
    return runs
  }

  public var description: String { "\(axis.rawValue) after \(leading): \(keyHeads) key heads × \(valuesPerKey) value heads × \(width)" }
}
