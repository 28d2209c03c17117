import Quantization
import TensorCore

/// A linear layer's weight `W[O, I]` (stored `[out, in]` like `nn.Linear`) in the storage the matmul reads.
///
/// BF16 and FP8-block weights stay in their checkpoint encoding (2 or 1 byte per element): the matmul
/// dequantizes them tile by tile while it packs them, so a layer never exists as a whole F32 copy.
public struct LinearWeight: Sendable {
  /// The element encoding.
  public enum Storage: Sendable {
    /// F32 values, row-major.
    case float32([Float])
    /// BF16 bit patterns, row-major.
    case bfloat16([UInt16])
    /// E4M3FN codes, row-major, and one F32 multiplier (`weight_scale_inv`) per `blockRows × blockColumns`
    /// block, the scales row-major `[⌈O / blockRows⌉, ⌈I / blockColumns⌉]`: `W[o, i] = decode(code) · scale`
    /// in F32, as `BlockFP8.dequantize` computes it.
    case float8Block(codes: [UInt8], scales: [Float], blockRows: Int, blockColumns: Int)
  }

  /// The element encoding.
  public let storage: Storage
  /// O, the rows of W (output features).
  public let outputCount: Int
  /// I, the columns of W (input features).
  public let inputCount: Int
  /// Who sees the input rows of every product with this weight (`ReferenceModel.linearInputObserver`, set when
  /// the model loads a named linear); `nil` for an anonymous weight.
  var inputTap: LinearInputTap?

  /// A weight of `outputCount × inputCount` elements in `storage`; throws when the counts disagree.
  public init(storage: Storage, outputCount: Int, inputCount: Int) throws(ReferenceModelError) {
    let shape = [outputCount, inputCount]
    guard outputCount >= 0, inputCount >= 0, let count = ByteCount.elementCount(shape) else {
      throw .elementCountMismatch(shape: shape, valueCount: 0)
    }
    switch storage {
    case .float32(let values):
      guard values.count == count else { throw .elementCountMismatch(shape: shape, valueCount: values.count) }
    case .bfloat16(let bits):
      guard bits.count == count else { throw .elementCountMismatch(shape: shape, valueCount: bits.count) }
    case .float8Block(let codes, let scales, let blockRows, let blockColumns):
      guard codes.count == count else { throw .elementCountMismatch(shape: shape, valueCount: codes.count) }
      guard blockRows > 0, blockColumns > 0 else { throw .elementCountMismatch(shape: [blockRows, blockColumns], valueCount: 0) }
      let scaleShape = [(outputCount + blockRows - 1) / blockRows, (inputCount + blockColumns - 1) / blockColumns]
      guard scales.count == scaleShape[0] * scaleShape[1] else {
        throw .elementCountMismatch(shape: scaleShape, valueCount: scales.count)
      }
    }
    self.storage = storage
    self.outputCount = outputCount
    self.inputCount = inputCount
  }

  /// An F32 weight `[outputCount, inputCount]` whose count the caller has checked.
  init(float32 values: [Float], outputCount: Int, inputCount: Int) {
    precondition(values.count == outputCount * inputCount, "matmul shape mismatch")
    self.storage = .float32(values)
    self.outputCount = outputCount
    self.inputCount = inputCount
  }

  /// An F32 weight from a 2-D tensor `[O, I]`.
  public init(_ tensor: FloatTensor) throws(ReferenceModelError) {
    guard tensor.shape.count == 2 else { throw .elementCountMismatch(shape: tensor.shape, valueCount: tensor.elementCount) }
    self.init(float32: tensor.values, outputCount: tensor.shape[0], inputCount: tensor.shape[1])
  }

  /// `W[o, i]` dequantized to F32, one element at a time: the scalar definition the packing kernels match.
  public func element(_ o: Int, _ i: Int) -> Float {
    let index = o * inputCount + i
    switch storage {
    case .float32(let values): return values[index]
    case .bfloat16(let bits): return Float(bitPattern: UInt32(bits[index]) << 16)
    case .float8Block(let codes, let scales, let blockRows, let blockColumns):
      let scaleColumns = (inputCount + blockColumns - 1) / blockColumns
      return Float8E4M3FN.decodeTable[Int(codes[index])] * scales[(o / blockRows) * scaleColumns + i / blockColumns]
    }
  }

  /// The whole weight in F32 (for the scalar twin and for callers that need the values themselves).
  public func dequantized() -> [Float] {
    if case .float32(let values) = storage { return values }
    var values = [Float](repeating: 0, count: outputCount * inputCount)
    for o in 0..<outputCount {
      for i in 0..<inputCount { values[o * inputCount + i] = element(o, i) }
    }
    return values
  }

  /// Bytes per element of the storage (the weight traffic of one product).
  public var bytesPerElement: Int {
    switch storage {
    case .float32: 4
    case .bfloat16: 2
    case .float8Block: 1
    }
  }
}

/// Sees the input rows `x[rowCount, in]` of each product with the named linear `weight` (its Hugging Face
/// name) during a forward pass: how the validator gets the activations a layer's linears really receive.
public typealias LinearInputObserver = @Sendable (_ weight: String, _ input: [Float], _ rowCount: Int) -> Void

/// A named weight's observer.
struct LinearInputTap: Sendable {
  let name: String
  let observer: LinearInputObserver
}

/// Copies tiles of a `LinearWeight` into the GEMM's packed panel layout, dequantizing on the way: a panel is
/// `depth` rows of `panelWidth` F32 values, `panel[k · panelWidth + j] = W[column + j, k0 + k]`, zero for the
/// columns past the weight's last row.
///
/// Holds raw pointers into the weight's arrays: valid only inside `LinearWeight.withPanelPacker`.
struct PanelPacker: @unchecked Sendable {
  fileprivate enum Source {
    case float32(UnsafePointer<Float>)
    case bfloat16(UnsafePointer<UInt16>)
    case float8Block(
      codes: UnsafePointer<UInt8>, scales: UnsafePointer<Float>, table: UnsafePointer<Float>, blockRows: Int,
      blockColumns: Int, scaleColumns: Int)
  }
  private let source: Source
  let outputCount: Int
  let inputCount: Int

  /// Packs `columns` (≤ `panelWidth`) rows of W starting at `column`, inputs `k0 ..< k0 + depth`.
  ///
  /// Eight inputs at a time across all the panel's rows, so that the eight panel rows being written (8 cache
  /// lines) stay in L1 while 16 rows of W stream in.
  @inline(__always)
  func pack(into panel: UnsafeMutablePointer<Float>, column: Int, columns: Int, k0: Int, depth: Int) {
    if columns < panelWidth { panel.update(repeating: 0, count: depth * panelWidth) }
    switch source {
    case .float32(let values):
      let base = values + column * inputCount + k0
      packRows(panel, columns: columns, depth: depth) { j, k in
        UnsafeRawPointer(base + j * inputCount + k).loadUnaligned(as: SIMD8<Float>.self)
      } element: { j, k in base[j * inputCount + k] }
    case .bfloat16(let bits):
      let base = bits + column * inputCount + k0
      packRows(panel, columns: columns, depth: depth) { j, k in
        let raw = UnsafeRawPointer(base + j * inputCount + k).loadUnaligned(as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: raw) &<< 16, to: SIMD8<Float>.self)
      } element: { j, k in Float(bitPattern: UInt32(base[j * inputCount + k]) &<< 16) }
    case .float8Block(let codes, let scales, let table, let blockRows, let blockColumns, let scaleColumns):
      func value(_ j: Int, _ k: Int) -> Float {
        let o = column + j, i = k0 + k
        return table[Int(codes[o * inputCount + i])] * scales[(o / blockRows) * scaleColumns + i / blockColumns]
      }
      guard blockColumns % 8 == 0, k0 % 8 == 0 else {
        packRows(panel, columns: columns, depth: depth) { j, k in
          SIMD8(value(j, k), value(j, k + 1), value(j, k + 2), value(j, k + 3), value(j, k + 4), value(j, k + 5),
            value(j, k + 6), value(j, k + 7))
        } element: { j, k in value(j, k) }
        return
      }
      // Eight codes share one scale: eight table lookups, one multiplication.
      packRows(panel, columns: columns, depth: depth) { j, k in
        let o = column + j, i = k0 + k
        let row = codes + o * inputCount + i
        let decoded = SIMD8(
          table[Int(row[0])], table[Int(row[1])], table[Int(row[2])], table[Int(row[3])], table[Int(row[4])],
          table[Int(row[5])], table[Int(row[6])], table[Int(row[7])])
        return decoded * scales[(o / blockRows) * scaleColumns + i / blockColumns]
      } element: { j, k in value(j, k) }
    }
  }

  /// The packing loop: `panel[k · 16 + j] = W(j, k)` from eight-input loads `vector(j, k)` (`k` a multiple of 8)
  /// and, for the last `depth % 8` inputs, `element(j, k)`.
  @inline(__always)
  private func packRows(
    _ panel: UnsafeMutablePointer<Float>, columns: Int, depth: Int, vector: (Int, Int) -> SIMD8<Float>,
    element: (Int, Int) -> Float
  ) {
    var k = 0
    while k &+ 8 <= depth {
      let out = panel + k &* panelWidth
      for j in 0..<columns {
        let v = vector(j, k)
        out[j] = v[0]; out[panelWidth &+ j] = v[1]; out[2 &* panelWidth &+ j] = v[2]; out[3 &* panelWidth &+ j] = v[3]
        out[4 &* panelWidth &+ j] = v[4]; out[5 &* panelWidth &+ j] = v[5]; out[6 &* panelWidth &+ j] = v[6]
        out[7 &* panelWidth &+ j] = v[7]
      }
      k &+= 8
    }
    while k < depth {
      for j in 0..<columns { panel[k &* panelWidth &+ j] = element(j, k) }
      k &+= 1
    }
  }

  fileprivate init(source: Source, outputCount: Int, inputCount: Int) {
    self.source = source
    self.outputCount = outputCount
    self.inputCount = inputCount
  }
}

extension LinearWeight {
  /// Calls `body` with a packer reading this weight's storage in place.
  func withPanelPacker<R>(_ body: (PanelPacker) -> R) -> R {
    switch storage {
    case .float32(let values):
      return values.withUnsafeBufferPointer {
        body(PanelPacker(source: .float32($0.baseAddress!), outputCount: outputCount, inputCount: inputCount))
      }
    case .bfloat16(let bits):
      return bits.withUnsafeBufferPointer {
        body(PanelPacker(source: .bfloat16($0.baseAddress!), outputCount: outputCount, inputCount: inputCount))
      }
    case .float8Block(let codes, let scales, let blockRows, let blockColumns):
      return codes.withUnsafeBufferPointer { codes in
        scales.withUnsafeBufferPointer { scales in
          Float8E4M3FN.decodeTable.withUnsafeBufferPointer { table in
            body(
              PanelPacker(
                source: .float8Block(
                  codes: codes.baseAddress!, scales: scales.baseAddress!, table: table.baseAddress!,
                  blockRows: blockRows, blockColumns: blockColumns,
                  scaleColumns: (inputCount + blockColumns - 1) / blockColumns),
                outputCount: outputCount, inputCount: inputCount))
          }
        }
      }
    }
  }
}
