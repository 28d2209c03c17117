import TensorCore

// Y[T, O] = X[T, I] · W[O, I]ᵀ: every linear layer of the model (W stored [out, in] like nn.Linear).
//
// `matmul` is the fast kernel: F32 products, F32 accumulation, fused multiply-add where the target has FMA
// (release builds target Haswell), 4×3 register tiles of SIMD8 accumulators, blocked over I so that the block
// of X stays in L2, multithreaded over output columns (rows of W). Its sums are reassociated (8 lanes, then a
// horizontal add, block by block), so it agrees with `matmulReference` to rounding, not bit for bit.
//
// `matmulReference` is the naive triple loop with Double accumulation, rounded once to Float: the algorithmic
// reference and the yardstick for the fast kernel's error.

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

/// `Y[T, O] = X[T, I] · W[O, I]ᵀ` in F32 with F32 accumulation: SIMD, cache-blocked, multithreaded.
public func matmul(_ x: [Float], _ w: [Float], rowCount: Int, inputCount: Int, outputCount: Int) -> [Float] {
  precondition(x.count == rowCount * inputCount && w.count == outputCount * inputCount, "matmul shape mismatch")
  let count = rowCount * outputCount
  return [Float](unsafeUninitializedCapacity: count) { y, initialized in
    y.initialize(repeating: 0)
    x.withUnsafeBytes { xBytes in
      w.withUnsafeBytes { wBytes in
        matmulAccumulate(
          into: DisjointMutableBuffer(y), x: SharedRawBuffer(xBytes), w: SharedRawBuffer(wBytes),
          rowCount: rowCount, inputCount: inputCount, outputCount: outputCount)
      }
    }
    initialized = count
  }
}

/// Tile sizes of the register kernel: 4 rows of X × 3 rows of W = 12 SIMD8 accumulators plus the 4 X vectors
/// use AVX2's 16 registers; the W vectors are loaded one at a time (or folded into the FMAs).
private let tileRows = 4
private let tileColumns = 3

/// `Y += X · Wᵀ` over raw buffers (Y zeroed by the caller); the threads split the columns of Y.
func matmulAccumulate(
  into y: DisjointMutableBuffer<Float>, x: SharedRawBuffer, w: SharedRawBuffer,
  rowCount: Int, inputCount: Int, outputCount: Int
) {
  guard rowCount > 0, outputCount > 0, inputCount > 0 else { return }
  precondition(
    y.buffer.count >= rowCount * outputCount && x.bytes.count >= rowCount * inputCount * 4
      && w.bytes.count >= outputCount * inputCount * 4, "matmul buffer too small")
  // Block of I such that X[T-block, I-block] stays in about half of L2 (1 MiB per core on current x86 servers).
  let rowBlock = 256
  let inputBlock = max(64, min(inputCount, ((128 * 1024) / min(rowCount, rowBlock)) & ~7))
  let columnTiles = (outputCount + tileColumns - 1) / tileColumns
  let flopsPerTile = 2 * rowCount * inputCount * tileColumns
  let minimumTiles = max(1, 2_000_000 / max(1, flopsPerTile))

  Parallel.forEachChunk(count: columnTiles, minimumChunk: minimumTiles) { tiles in
    let columnStart = tiles.lowerBound * tileColumns
    let columnEnd = min(outputCount, tiles.upperBound * tileColumns)
    let xBase = x.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
    let wBase = w.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
    let yBase = y.buffer.baseAddress!
    var rowStart = 0
    while rowStart < rowCount {
      let rowEnd = min(rowCount, rowStart + rowBlock)
      var inputStart = 0
      while inputStart < inputCount {
        let length = min(inputBlock, inputCount - inputStart)
        var column = columnStart
        while column < columnEnd {
          let columns = min(tileColumns, columnEnd - column)
          var row = rowStart
          while row < rowEnd {
            let rows = min(tileRows, rowEnd - row)
            let xTile = xBase + row * inputCount + inputStart
            let wTile = wBase + column * inputCount + inputStart
            let yTile = yBase + row * outputCount + column
            if rows == tileRows && columns == tileColumns {
              tile4x3(xTile, wTile, yTile, stride: inputCount, yStride: outputCount, length: length)
            } else {
              tileEdge(xTile, wTile, yTile, rows: rows, columns: columns, stride: inputCount,
                yStride: outputCount, length: length)
            }
            row += rows
          }
          column += columns
        }
        inputStart += length
      }
      rowStart = rowEnd
    }
  }
}

@inline(__always)
private func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
  UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

/// The register kernel: `Y[4, 3] += X[4, length] · W[3, length]ᵀ`.
@inline(__always)
private func tile4x3(
  _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
  stride: Int, yStride: Int, length: Int
) {
  let x0 = x, x1 = x + stride, x2 = x + 2 * stride, x3 = x + 3 * stride
  let w0 = w, w1 = w + stride, w2 = w + 2 * stride
  var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>()
  var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>()
  var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>()
  var a30 = SIMD8<Float>(), a31 = SIMD8<Float>(), a32 = SIMD8<Float>()
  var i = 0
  while i &+ 8 <= length {
    let v0 = load8(x0 + i), v1 = load8(x1 + i), v2 = load8(x2 + i), v3 = load8(x3 + i)
    let u0 = load8(w0 + i)
    a00.addProduct(v0, u0); a10.addProduct(v1, u0); a20.addProduct(v2, u0); a30.addProduct(v3, u0)
    let u1 = load8(w1 + i)
    a01.addProduct(v0, u1); a11.addProduct(v1, u1); a21.addProduct(v2, u1); a31.addProduct(v3, u1)
    let u2 = load8(w2 + i)
    a02.addProduct(v0, u2); a12.addProduct(v1, u2); a22.addProduct(v2, u2); a32.addProduct(v3, u2)
    i &+= 8
  }
  var s00 = a00.sum(), s01 = a01.sum(), s02 = a02.sum()
  var s10 = a10.sum(), s11 = a11.sum(), s12 = a12.sum()
  var s20 = a20.sum(), s21 = a21.sum(), s22 = a22.sum()
  var s30 = a30.sum(), s31 = a31.sum(), s32 = a32.sum()
  while i < length {
    let v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i]
    let u0 = w0[i], u1 = w1[i], u2 = w2[i]
    s00 += v0 * u0; s01 += v0 * u1; s02 += v0 * u2
    s10 += v1 * u0; s11 += v1 * u1; s12 += v1 * u2
    s20 += v2 * u0; s21 += v2 * u1; s22 += v2 * u2
    s30 += v3 * u0; s31 += v3 * u1; s32 += v3 * u2
    i += 1
  }
  let y0 = y, y1 = y + yStride, y2 = y + 2 * yStride, y3 = y + 3 * yStride
  y0[0] += s00; y0[1] += s01; y0[2] += s02
  y1[0] += s10; y1[1] += s11; y1[2] += s12
  y2[0] += s20; y2[1] += s21; y2[2] += s22
  y3[0] += s30; y3[1] += s31; y3[2] += s32
}

/// Edge tiles (fewer than 4 rows or 3 columns): one dot product at a time, two accumulators.
@inline(__always)
private func tileEdge(
  _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
  rows: Int, columns: Int, stride: Int, yStride: Int, length: Int
) {
  for r in 0..<rows {
    for c in 0..<columns {
      y[r * yStride + c] += dot(x + r * stride, w + c * stride, length: length)
    }
  }
}

/// `Σ a[i]·b[i]` with four SIMD8 accumulators (for one-row products such as decoding a single token).
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, length: Int) -> Float {
  var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
  var i = 0
  while i &+ 32 <= length {
    acc0.addProduct(load8(a + i), load8(b + i))
    acc1.addProduct(load8(a + i + 8), load8(b + i + 8))
    acc2.addProduct(load8(a + i + 16), load8(b + i + 16))
    acc3.addProduct(load8(a + i + 24), load8(b + i + 24))
    i &+= 32
  }
  while i &+ 8 <= length {
    acc0.addProduct(load8(a + i), load8(b + i))
    i &+= 8
  }
  var sum = ((acc0 + acc1) + (acc2 + acc3)).sum()
  while i < length {
    sum += a[i] * b[i]
    i += 1
  }
  return sum
}
