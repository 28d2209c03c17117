import TensorCore

// Y[T, O] = X[T, I] · W[O, I]ᵀ: every linear layer of the model (W stored [out, in] like nn.Linear).
//
// `matmul` is the fast kernel, a packed, cache-blocked GEMM in the GotoBLAS/BLIS shape:
//   - X is packed once into micro-panels of 6 rows (`[k][6]`, zero rows past T);
//   - each thread owns a range of 16-column panels of Y; for every block of `depth` inputs it packs one panel
//     of W (`[k][16]`, dequantizing BF16/FP8 on the way, `PanelPacker`) into L1 and runs the 6×16 register
//     kernel down all of X's micro-panels, which stay in L2;
//   - the register kernel keeps 12 SIMD8 accumulators (6 rows × 2 vectors) and one fused multiply-add per
//     element and input (release builds target Haswell: AVX2 + FMA).
// Every output element is one chain `s = fma(x[t, i], w[o, i], s)` over i = 0, 1, ..., I−1 in order (the
// kernel loads Y's partial sums at each depth block rather than adding block sums), so the result does not
// depend on the blocking, the thread count or the other rows of the batch, and `matmulScalar` — that chain as
// a plain loop — is its bit-exact twin.
//
// `matmulReference` is the naive triple loop with Double accumulation, rounded once to Float: the algorithmic
// reference and the yardstick for F32 accumulation's error.

/// `Y[T, O] = X[T, I] · W[O, I]ᵀ` with the naive triple loop, accumulating in Double and rounding once.
public func matmulReference(
  _ x: [Float], _ w: [Float], rowCount: Int, inputCount: Int, outputCount: Int
) -> [Float] {
  precondition(x.count == rowCount * inputCount && w.count == outputCount * inputCount, "matmul shape mismatch")
  var y = [Float](repeating: 0, count: rowCount * outputCount)
  for t in 0..<rowCount {
    for o in 0..<outputCount {
      var sum = 0.0
      for i in 0..<inputCount {
        sum += Double(x[t * inputCount + i]) * Double(w[o * inputCount + i])
      }
      y[t * outputCount + o] = Float(sum)
    }
  }
  return y
}

/// The fast kernel's scalar twin: each element one fused multiply-add chain over the inputs in order, the
/// weight dequantized element by element. `matmul` returns exactly these bits.
public func matmulScalar(_ x: [Float], _ w: LinearWeight, rowCount: Int) -> [Float] {
  let inputCount = w.inputCount, outputCount = w.outputCount
  precondition(x.count == rowCount * inputCount, "matmul shape mismatch")
  let values = w.dequantized()
  var y = [Float](repeating: 0, count: rowCount * outputCount)
  for t in 0..<rowCount {
    for o in 0..<outputCount {
      var sum: Float = 0
      for i in 0..<inputCount { sum = sum.addingProduct(x[t * inputCount + i], values[o * inputCount + i]) }
      y[t * outputCount + o] = sum
    }
  }
  return y
}

/// `Y[T, O] = X[T, I] · W[O, I]ᵀ` in F32 with F32 accumulation: packed, cache-blocked, SIMD, on all cores.
public func matmul(_ x: [Float], _ w: [Float], rowCount: Int, inputCount: Int, outputCount: Int) -> [Float] {
  precondition(x.count == rowCount * inputCount && w.count == outputCount * inputCount, "matmul shape mismatch")
  return matmul(x, LinearWeight(float32: w, outputCount: outputCount, inputCount: inputCount), rowCount: rowCount)
}

/// `Y[T, O] = X[T, I] · W[O, I]ᵀ` with W in any `LinearWeight` storage, dequantized per packed tile.
public func matmul(_ x: [Float], _ w: LinearWeight, rowCount: Int) -> [Float] {
  let inputCount = w.inputCount, outputCount = w.outputCount
  precondition(x.count == rowCount * inputCount, "matmul shape mismatch")
  if let tap = w.inputTap { tap.observer(tap.name, x, rowCount) }
  let count = rowCount * outputCount
  return [Float](unsafeUninitializedCapacity: count) { y, initialized in
    y.initialize(repeating: 0)
    initialized = count
    guard rowCount > 0, outputCount > 0, inputCount > 0 else { return }
    x.withUnsafeBufferPointer { xBuffer in
      w.withPanelPacker { packer in
        PackedGEMM(x: xBuffer.baseAddress!, rowCount: rowCount, packer: packer)
          .run(into: DisjointMutableBuffer(y))
      }
    }
  }
}

/// `Y[T, O] = X[T, I] · W[O, I]ᵀ + bias[O]` (`nn.Linear` with a bias; without one, exactly `matmul(x, w)`).
func matmul(_ x: [Float], _ w: LinearWeight, bias: [Float]?, rowCount: Int) -> [Float] {
  var y = matmul(x, w, rowCount: rowCount)
  guard let bias else { return y }
  let O = w.outputCount
  precondition(bias.count == O, "bias shape mismatch")
  for t in 0..<rowCount {
    for o in 0..<O { y[t * O + o] += bias[o] }
  }
  return y
}

/// Rows of a packed micro-panel of X, and columns of a packed panel of W: the 6×16 register tile.
let panelHeight = 6
let panelWidth = 16

/// One product's blocking and its packed X.
private struct PackedGEMM: @unchecked Sendable {
  let x: UnsafePointer<Float>
  let rowCount: Int
  let packer: PanelPacker
  var inputCount: Int { packer.inputCount }
  var outputCount: Int { packer.outputCount }

  /// Inputs per packing block: one W panel of `packDepth × 16` F32 (64 KiB, L2) is packed from 16 runs of 4 KiB
  /// (long enough for the hardware prefetcher), then swept in kernel blocks of `kernelDepth` (16 KiB, L1).
  static let packDepth = 1024
  static let kernelDepth = 256
  /// X rows per row block: `rowBlock × packDepth` F32 of packed X (768 KiB) stay in L2.
  static let rowBlock = 192

  init(x: UnsafePointer<Float>, rowCount: Int, packer: PanelPacker) {
    self.x = x
    self.rowCount = rowCount
    self.packer = packer
  }

  func run(into y: DisjointMutableBuffer<Float>) {
    let panels = (outputCount + panelWidth - 1) / panelWidth
    let flopsPerPanel = 2 * rowCount * inputCount * panelWidth
    let minimumPanels = max(1, 4_000_000 / max(1, flopsPerPanel))
    guard rowCount > 1 else {
      // One token (decoding): X needs no packing.
      Parallel.forEachChunk(count: panels, minimumChunk: minimumPanels) { range in
        sweep(panels: range, packedX: nil, microPanels: 1, y: y.buffer.baseAddress!)
      }
      return
    }
    let microPanels = (rowCount + panelHeight - 1) / panelHeight
    let packedX = UnsafeMutablePointer<Float>.allocate(capacity: microPanels * panelHeight * inputCount)
    defer { packedX.deallocate() }
    packX(into: packedX, microPanels: microPanels)
    let shared = SendablePointer(packedX)
    Parallel.forEachChunk(count: panels, minimumChunk: minimumPanels) { range in
      sweep(panels: range, packedX: UnsafePointer(shared.pointer), microPanels: microPanels, y: y.buffer.baseAddress!)
    }
  }

  /// X as micro-panels, kernel block by kernel block: block `k0` starts at `k0 · microPanels · 6`, its
  /// micro-panel `p` at `+ p · 6 · blockDepth`, element `[k][r]` at `+ k · 6 + r` (zeros for rows past T).
  private func packX(into packed: UnsafeMutablePointer<Float>, microPanels: Int) {
    var k0 = 0
    while k0 < inputCount {
      let depth = min(Self.kernelDepth, inputCount - k0)
      for p in 0..<microPanels {
        let panel = packed + k0 * microPanels * panelHeight + p * panelHeight * depth
        for r in 0..<panelHeight {
          let row = p * panelHeight + r
          if row < rowCount {
            let source = x + row * inputCount + k0
            for k in 0..<depth { panel[k * panelHeight + r] = source[k] }
          } else {
            for k in 0..<depth { panel[k * panelHeight + r] = 0 }
          }
        }
      }
      k0 += depth
    }
  }

  /// Computes the columns of `panels`: row block by row block, packing block by packing block, each W panel
  /// packed once and swept down all the row block's micro-panels. `packedX` is nil for a single row.
  private func sweep(
    panels: Range<Int>, packedX: UnsafePointer<Float>?, microPanels: Int, y: UnsafeMutablePointer<Float>
  ) {
    // A single row packs each panel over all inputs at once: nothing to keep in L2 but the panel, and rows of
    // W streamed in runs longer than a page (the prefetchers stop at 4 KiB boundaries).
    let packBlock = packedX == nil ? inputCount : Self.packDepth
    let panel = UnsafeMutablePointer<Float>.allocate(capacity: packBlock * panelWidth)
    defer { panel.deallocate() }
    let edge = UnsafeMutablePointer<Float>.allocate(capacity: panelHeight * panelWidth)
    defer { edge.deallocate() }
    let rowBlockPanels = Self.rowBlock / panelHeight
    var firstMicroPanel = 0
    while firstMicroPanel < microPanels {
      let lastMicroPanel = min(microPanels, firstMicroPanel + rowBlockPanels)
      var packStart = 0
      while packStart < inputCount {
        let packDepth = min(packBlock, inputCount - packStart)
        for p in panels {
          let column = p * panelWidth
          let columns = min(panelWidth, outputCount - column)
          packer.pack(into: panel, column: column, columns: columns, k0: packStart, depth: packDepth)
          guard let packedX else {
            withTile(y + column, rows: 1, of: 1, columns: columns, edge: edge) { tile, _ in
              kernel1x16(x + packStart, panel, tile, depth: packDepth)
            }
            continue
          }
          var k0 = packStart
          while k0 < packStart + packDepth {
            let depth = min(Self.kernelDepth, inputCount - k0)
            let xBlock = packedX + k0 * microPanels * panelHeight
            let wBlock = panel + (k0 - packStart) * panelWidth
            for m in firstMicroPanel..<lastMicroPanel {
              let row = m * panelHeight
              withTile(y + row * outputCount + column, rows: min(panelHeight, rowCount - row), of: panelHeight, columns: columns,
                edge: edge) {
                tile, stride in
                kernel6x16(xBlock + m * panelHeight * depth, wBlock, tile, yStride: stride, depth: depth)
              }
            }
            k0 += depth
          }
        }
        packStart += packDepth
      }
      firstMicroPanel = lastMicroPanel
    }
  }

  /// Runs `body` on the Y tile at `y` (`kernelRows` × 16 at row stride O), or, for a partial tile at the edge
  /// of Y (`rows` × `columns`), on a copy in `edge` (stride 16) that is copied back.
  @inline(__always)
  private func withTile(
    _ y: UnsafeMutablePointer<Float>, rows: Int, of kernelRows: Int, columns: Int, edge: UnsafeMutablePointer<Float>,
    _ body: (UnsafeMutablePointer<Float>, Int) -> Void
  ) {
    if rows == kernelRows && columns == panelWidth {
      body(y, outputCount)
      return
    }
    for r in 0..<rows { for c in 0..<columns { edge[r * panelWidth + c] = y[r * outputCount + c] } }
    body(edge, panelWidth)
    for r in 0..<rows { for c in 0..<columns { y[r * outputCount + c] = edge[r * panelWidth + c] } }
  }
}

/// A pointer handed to the worker threads, which only read through it.
private struct SendablePointer: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<Float>
  init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

@inline(__always)
private func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
  UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
}

/// The register kernel: `Y[6, 16] = fma-chain(Y, X[6, depth] · W[16, depth]ᵀ)` over packed panels. Twelve SIMD8
/// accumulators + two W vectors + one broadcast = 15 of AVX2's 16 registers.
@inline(__always)
private func kernel6x16(
  _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, yStride: Int, depth: Int
) {
  let y0 = y, y1 = y + yStride, y2 = y + 2 * yStride, y3 = y + 3 * yStride, y4 = y + 4 * yStride
  let y5 = y + 5 * yStride
  var c00 = load8(y0), c01 = load8(y0 + 8), c10 = load8(y1), c11 = load8(y1 + 8)
  var c20 = load8(y2), c21 = load8(y2 + 8), c30 = load8(y3), c31 = load8(y3 + 8)
  var c40 = load8(y4), c41 = load8(y4 + 8), c50 = load8(y5), c51 = load8(y5 + 8)
  var a = x, b = w
  var k = 0
  while k < depth {
    let b0 = load8(b), b1 = load8(b + 8)
    var v = SIMD8<Float>(repeating: a[0])
    c00.addProduct(v, b0); c01.addProduct(v, b1)
    v = SIMD8<Float>(repeating: a[1])
    c10.addProduct(v, b0); c11.addProduct(v, b1)
    v = SIMD8<Float>(repeating: a[2])
    c20.addProduct(v, b0); c21.addProduct(v, b1)
    v = SIMD8<Float>(repeating: a[3])
    c30.addProduct(v, b0); c31.addProduct(v, b1)
    v = SIMD8<Float>(repeating: a[4])
    c40.addProduct(v, b0); c41.addProduct(v, b1)
    v = SIMD8<Float>(repeating: a[5])
    c50.addProduct(v, b0); c51.addProduct(v, b1)
    a += panelHeight
    b += panelWidth
    k &+= 1
  }
  store8(c00, y0); store8(c01, y0 + 8); store8(c10, y1); store8(c11, y1 + 8)
  store8(c20, y2); store8(c21, y2 + 8); store8(c30, y3); store8(c31, y3 + 8)
  store8(c40, y4); store8(c41, y4 + 8); store8(c50, y5); store8(c51, y5 + 8)
}

/// The one-row kernel: `Y[16] = fma-chain(Y, x[depth] · W[16, depth]ᵀ)` over one packed panel. Two FMA
/// chains are latency-bound at a quarter of the FMA units' rate, still well above what memory feeds W at.
@inline(__always)
private func kernel1x16(
  _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, depth: Int
) {
  var c0 = load8(y), c1 = load8(y + 8)
  var k = 0
  while k < depth {
    let v = SIMD8<Float>(repeating: x[k])
    let offset = k &* panelWidth
    c0.addProduct(v, load8(w + offset))
    c1.addProduct(v, load8(w + offset + 8))
    k &+= 1
  }
  store8(c0, y)
  store8(c1, y + 8)
}
