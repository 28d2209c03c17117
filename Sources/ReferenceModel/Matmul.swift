import TensorCore

// Y[T, O] = X[T, I] · W[O, I]ᵀ: every linear layer of the model (W stored [out, in] like nn.Linear).
//
// `matmul` is the fast kernel: F32 products, F32 accumulation, fused multiply-add where the target has FMA
// (release builds target Haswell), 2×6 register tiles of SIMD8 accumulators, blocked over I so that the block
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

/// Tile sizes of the register kernel (see `tile2x6`).
private let tileRows = 2
private let tileColumns = 6

/// `Y += X · Wᵀ` over raw buffers (Y zeroed by the caller); the threads split the columns of Y.
func matmulAccumulate(
  into y: DisjointMutableBuffer<Float>, x: SharedRawBuffer, w: SharedRawBuffer,
  rowCount: Int, inputCount: Int, outputCount: Int
) {
  guard rowCount > 0, outputCount > 0, inputCount > 0 else { return }
  precondition(
    y.buffer.count >= rowCount * outputCount && x.bytes.count >= rowCount * inputCount * 4
      && w.bytes.count >= outputCount * inputCount * 4, "matmul buffer too small")
  // X[256 rows, 512 inputs] = 512 KiB stays in L2 while every column tile streams past it. The I blocking is
  // the same whatever T is, so that a row's summation order (and result) does not depend on the batch.
  let rowBlock = 256
  let inputBlock = 512
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
        // Full 2-row tiles first, then the last row (when the block has an odd row count) on its own.
        let fullRowEnd = rowStart + (rowEnd - rowStart) / tileRows * tileRows
        var column = columnStart
        while column < columnEnd {
          let columns = min(tileColumns, columnEnd - column)
          var row = rowStart
          while row < fullRowEnd {
            let xTile = xBase + row * inputCount + inputStart
            let wTile = wBase + column * inputCount + inputStart
            let yTile = yBase + row * outputCount + column
            if columns == tileColumns {
              tile2x6(xTile, wTile, yTile, stride: inputCount, yStride: outputCount, length: length)
            } else {
              rowTimesColumns(
                xTile, wTile, yTile, rows: tileRows, columns: columns, stride: inputCount, yStride: outputCount,
                length: length)
            }
            row += tileRows
          }
          column += columns
        }
        if fullRowEnd < rowEnd {
          rowTimesColumns(
            xBase + fullRowEnd * inputCount + inputStart, wBase + columnStart * inputCount + inputStart,
            yBase + fullRowEnd * outputCount + columnStart, rows: rowEnd - fullRowEnd, columns: columnEnd - columnStart,
            stride: inputCount, yStride: outputCount, length: length)
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

/// The register kernel: `Y[2, 6] += X[2, length] · W[6, length]ᵀ`. Twelve SIMD8 accumulators + the two X
/// vectors + one W vector = 15 of AVX2's 16 registers (a 4×3 tile needs 17 and spills).
@inline(__always)
private func tile2x6(
  _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
  stride: Int, yStride: Int, length: Int
) {
  let x0 = x, x1 = x + stride
  let w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride, w4 = w + 4 * stride, w5 = w + 5 * stride
  var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>()
  var a03 = SIMD8<Float>(), a04 = SIMD8<Float>(), a05 = SIMD8<Float>()
  var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>()
  var a13 = SIMD8<Float>(), a14 = SIMD8<Float>(), a15 = SIMD8<Float>()
  var i = 0
  while i &+ 8 <= length {
    let v0 = load8(x0 + i), v1 = load8(x1 + i)
    let u0 = load8(w0 + i)
    a00.addProduct(v0, u0); a10.addProduct(v1, u0)
    let u1 = load8(w1 + i)
    a01.addProduct(v0, u1); a11.addProduct(v1, u1)
    let u2 = load8(w2 + i)
    a02.addProduct(v0, u2); a12.addProduct(v1, u2)
    let u3 = load8(w3 + i)
    a03.addProduct(v0, u3); a13.addProduct(v1, u3)
    let u4 = load8(w4 + i)
    a04.addProduct(v0, u4); a14.addProduct(v1, u4)
    let u5 = load8(w5 + i)
    a05.addProduct(v0, u5); a15.addProduct(v1, u5)
    i &+= 8
  }
  var s0 = SIMD8<Float>(a00.sum(), a01.sum(), a02.sum(), a03.sum(), a04.sum(), a05.sum(), 0, 0)
  var s1 = SIMD8<Float>(a10.sum(), a11.sum(), a12.sum(), a13.sum(), a14.sum(), a15.sum(), 0, 0)
  while i < length {
    let v0 = x0[i], v1 = x1[i]
    for j in 0..<6 {
      let u = w[j * stride + i]
      s0[j] += v0 * u
      s1[j] += v1 * u
    }
    i += 1
  }
  let y1 = y + yStride
  for j in 0..<6 {
    y[j] += s0[j]
    y1[j] += s1[j]
  }
}

/// Edge tiles (the last row when T is odd, or a last partial column tile), eight columns at a
/// time so that one-token products (decoding) keep eight independent FMA chains in flight.
///
/// Each element is summed in the same order as in `tile2x6` (one SIMD8 chain over the block, its horizontal
/// sum, then the scalar tail), so a row's result never depends on where it falls in a tile: the output for
/// one token is bit-identical whatever else is in the batch.
@inline(__always)
private func rowTimesColumns(
  _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
  rows: Int, columns: Int, stride: Int, yStride: Int, length: Int
) {
  for r in 0..<rows {
    let xr = x + r * stride
    let yr = y + r * yStride
    var c = 0
    while c < columns {
      let group = min(8, columns - c)
      // Missing columns of a short group reuse the group's first row of W; their sums are discarded.
      let wc = w + c * stride
      let w0 = wc, w1 = group > 1 ? wc + stride : wc, w2 = group > 2 ? wc + 2 * stride : wc
      let w3 = group > 3 ? wc + 3 * stride : wc, w4 = group > 4 ? wc + 4 * stride : wc
      let w5 = group > 5 ? wc + 5 * stride : wc, w6 = group > 6 ? wc + 6 * stride : wc
      let w7 = group > 7 ? wc + 7 * stride : wc
      var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
      var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
      var i = 0
      while i &+ 8 <= length {
        let v = load8(xr + i)
        a0.addProduct(v, load8(w0 + i)); a1.addProduct(v, load8(w1 + i))
        a2.addProduct(v, load8(w2 + i)); a3.addProduct(v, load8(w3 + i))
        a4.addProduct(v, load8(w4 + i)); a5.addProduct(v, load8(w5 + i))
        a6.addProduct(v, load8(w6 + i)); a7.addProduct(v, load8(w7 + i))
        i &+= 8
      }
      var sums = SIMD8<Float>(a0.sum(), a1.sum(), a2.sum(), a3.sum(), a4.sum(), a5.sum(), a6.sum(), a7.sum())
      for j in 0..<group {
        let wj = wc + j * stride
        var k = i
        while k < length {
          sums[j] += xr[k] * wj[k]
          k += 1
        }
        yr[c + j] += sums[j]
      }
      c += group
    }
  }
}
