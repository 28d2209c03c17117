/// ggml's 32-element block types (ggml-quants.c): `quantize_row_<type>_ref` without an importance matrix
/// (scalar here, vectorized in `LegacyQuantsFast`), `quantize_row_<type>_impl` with one (what
/// `ggml_quantize_chunk` and so llama-quantize run; its per-block searches go through `GroupSearch` with the
/// given kernel), and `dequantize_row_<type>`. Each row is `count` floats, a multiple of 32; `importance` holds `count`
/// values (llama-quantize passes the same vector for every row of a matrix).
///
/// Layouts (little-endian, packed): Q4_0 `f16 d, u8 qs[16]`; Q4_1 `f16 d, f16 m, u8 qs[16]`; Q5_0
/// `f16 d, u8 qh[4], u8 qs[16]`; Q5_1 `f16 d, f16 m, u8 qh[4], u8 qs[16]`; Q8_0 `f16 d, i8 qs[32]`. Nibble
/// `j` of `qs` low holds element `j`, high holds element `j + 16`; bit `j` of `qh` the fifth bit of element `j`.
enum LegacyQuants {
  static let blockSize = 32

  // MARK: Q4_0

  static func quantizeQ4_0(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / blockSize { q4_0Block(x + b * blockSize, y + b * 18) }
  }

  /// `quantize_row_q4_0_impl` (nmax 8) / `quantize_row_q5_0_impl` (nmax 16): `make_qx_quants` per block.
  static func quantizeSymmetricImportance(
    _ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>, maxLevel: Int, into y: UnsafeMutableRawPointer,
    kernel: SearchKernel
  ) {
    let blocks = count / blockSize
    let weight = importanceWeights(x, count: count, importance: importance)
    var L = [Int8](repeating: 0, count: count)
    var scales = [Float](repeating: 0, count: blocks)
    let groups = GroupSearch(kernel, groupLength: blockSize)
    groups.symmetric(x, weights: weight, groupCount: blocks, maxLevel: maxLevel, scales: &scales, levels: &L)
    for b in 0..<blocks {
      let out = y + b * (maxLevel == 8 ? 18 : 22)
      out.storeHalf(GGMLScalars.halfBits(scales[b]), at: 0)
      if maxLevel == 8 {
        for j in 0..<16 {
          out.storeBytes(of: UInt8(truncatingIfNeeded: Int(L[32 * b + j]) | Int(L[32 * b + j + 16]) << 4), toByteOffset: 2 + j, as: UInt8.self)
        }
      } else {
        storeFiveBit((0..<32).map { UInt8(truncatingIfNeeded: L[32 * b + $0]) }, qhOffset: 2, into: out)
      }
    }
  }

  /// `qw[j]·sqrtf(sigma2 + x[j]²)` with the row's `sigma2 = Σx²/n`, the weights of the 32-element importance paths.
  static func importanceWeights(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>) -> [Float] {
    let sigma2 = rowSigma2(x, count: count)
    return (0..<count).map { QuantSearch.importanceWeight(importance[$0], sigma2: sigma2, x[$0]) }
  }

  static func q4_0Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0
    var max: Float = 0
    for j in 0..<blockSize where amax < abs(x[j]) {
      amax = abs(x[j])
      max = x[j]
    }
    let d = max / -8
    let id: Float = d != 0 ? 1 / d : 0
    y.storeHalf(GGMLScalars.halfBits(d), at: 0)
    for j in 0..<16 {
      let xi0 = Swift.min(15, Int(Int8(truncatingIfNeeded: GGMLScalars.truncatedInt32(x[j] * id + 8.5))))
      let xi1 = Swift.min(15, Int(Int8(truncatingIfNeeded: GGMLScalars.truncatedInt32(x[16 + j] * id + 8.5))))
      y.storeBytes(of: UInt8(truncatingIfNeeded: xi0) | UInt8(truncatingIfNeeded: xi1 << 4), toByteOffset: 2 + j, as: UInt8.self)
    }
  }

  static func dequantizeQ4_0(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for b in 0..<count / blockSize {
      let block = y + b * 18
      let d = block.loadHalf(at: 0)
      for j in 0..<16 {
        let q = block.loadByte(at: 2 + j)
        x[b * 32 + j] = Float(Int(q & 0x0F) - 8) * d
        x[b * 32 + j + 16] = Float(Int(q >> 4) - 8) * d
      }
    }
  }

  // MARK: Q4_1

  static func quantizeQ4_1(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / blockSize { minMaxBlock(x + b * blockSize, y + b * 20, bits: 4) }
  }

  // MARK: Q5_0

  static func quantizeQ5_0(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / blockSize { q5_0Block(x + b * blockSize, y + b * 22) }
  }

  static func q5_0Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0
    var max: Float = 0
    for j in 0..<blockSize where amax < abs(x[j]) {
      amax = abs(x[j])
      max = x[j]
    }
    let d = max / -16
    let id: Float = d != 0 ? 1 / d : 0
    y.storeHalf(GGMLScalars.halfBits(d), at: 0)
    var levels = [UInt8](repeating: 0, count: blockSize)
    for j in 0..<blockSize {
      levels[j] = UInt8(truncatingIfNeeded: Swift.min(31, Int(Int8(truncatingIfNeeded: GGMLScalars.truncatedInt32(x[j] * id + 16.5)))))
    }
    storeFiveBit(levels, qhOffset: 2, into: y)
  }

  static func dequantizeQ5_0(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for b in 0..<count / blockSize {
      let block = y + b * 22
      let d = block.loadHalf(at: 0)
      let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
      for j in 0..<16 {
        let q = block.loadByte(at: 6 + j)
        let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
        let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
        x[b * 32 + j] = Float(Int32((q & 0x0F) | h0) - 16) * d
        x[b * 32 + j + 16] = Float(Int32((q >> 4) | h1) - 16) * d
      }
    }
  }

  // MARK: Q5_1

  static func quantizeQ5_1(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / blockSize { minMaxBlock(x + b * blockSize, y + b * 24, bits: 5) }
  }

  // MARK: Q4_1 and Q5_1 shared paths

  /// `quantize_row_q4_1_ref` / `quantize_row_q5_1_ref`: `d = (max − min)/(2^bits − 1)`, `m = min`.
  static func minMaxBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, bits: Int) {
    var min = Float.greatestFiniteMagnitude
    var max = -Float.greatestFiniteMagnitude
    for j in 0..<blockSize {
      if x[j] < min { min = x[j] }
      if x[j] > max { max = x[j] }
    }
    let d = (max - min) / Float((1 << bits) - 1)
    let id: Float = d != 0 ? 1 / d : 0
    y.storeHalf(GGMLScalars.halfBits(d), at: 0)
    y.storeHalf(GGMLScalars.halfBits(min), at: 2)
    if bits == 4 {
      for j in 0..<16 {
        let xi0 = Swift.min(15, Int(Int8(truncatingIfNeeded: GGMLScalars.truncatedInt32((x[j] - min) * id + 0.5))))
        let xi1 = Swift.min(15, Int(Int8(truncatingIfNeeded: GGMLScalars.truncatedInt32((x[16 + j] - min) * id + 0.5))))
        y.storeBytes(of: UInt8(truncatingIfNeeded: xi0) | UInt8(truncatingIfNeeded: xi1 << 4), toByteOffset: 4 + j, as: UInt8.self)
      }
    } else {
      var levels = [UInt8](repeating: 0, count: blockSize)
      for j in 0..<blockSize { levels[j] = UInt8(truncatingIfNeeded: GGMLScalars.truncatedInt32((x[j] - min) * id + 0.5)) }
      storeFiveBit(levels, qhOffset: 4, into: y)
    }
  }

  /// `quantize_row_q4_1_impl` / `quantize_row_q5_1_impl`: `make_qkx3_quants` per block under the importance.
  static func quantizeAffineImportance(
    _ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>, maxLevel: Int,
    into y: UnsafeMutableRawPointer, kernel: SearchKernel
  ) {
    let blocks = count / blockSize
    let blockBytes = maxLevel == 15 ? 20 : 24
    let weight = importanceWeights(x, count: count, importance: importance)
    var L = [UInt8](repeating: 0, count: count)
    var scales = [Float](repeating: 0, count: blocks)
    var theMins = [Float](repeating: 0, count: blocks)
    let groups = GroupSearch(kernel, groupLength: blockSize)
    let search = QuantSearch.AffineSearch(rmin: -0.9, rdelta: 0.05, steps: 36, useMAD: false)
    groups.affine(x, weights: weight, groupCount: blocks, maxLevel: maxLevel, search, scales: &scales, theMins: &theMins, levels: &L)
    for b in 0..<blocks {
      let out = y + b * blockBytes
      out.storeHalf(GGMLScalars.halfBits(scales[b]), at: 0)
      out.storeHalf(GGMLScalars.halfBits(-theMins[b]), at: 2)
      if maxLevel == 15 {
        for j in 0..<16 { out.storeBytes(of: L[32 * b + j] | L[32 * b + j + 16] << 4, toByteOffset: 4 + j, as: UInt8.self) }
      } else {
        storeFiveBit(Array(L[(32 * b)..<(32 * b + 32)]), qhOffset: 4, into: out)
      }
    }
  }

  static func dequantizeQ4_1(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for b in 0..<count / blockSize {
      let block = y + b * 20
      let d = block.loadHalf(at: 0)
      let m = block.loadHalf(at: 2)
      for j in 0..<16 {
        let q = block.loadByte(at: 4 + j)
        x[b * 32 + j] = Float(q & 0x0F) * d + m
        x[b * 32 + j + 16] = Float(q >> 4) * d + m
      }
    }
  }

  static func dequantizeQ5_1(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for b in 0..<count / blockSize {
      let block = y + b * 24
      let d = block.loadHalf(at: 0)
      let m = block.loadHalf(at: 2)
      let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
      for j in 0..<16 {
        let q = block.loadByte(at: 8 + j)
        let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
        let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
        x[b * 32 + j] = Float((q & 0x0F) | h0) * d + m
        x[b * 32 + j + 16] = Float((q >> 4) | h1) * d + m
      }
    }
  }

  /// Packs 32 five-bit levels: low nibbles into `qs` (after `qh`), fifth bits into the u32 `qh`.
  static func storeFiveBit(_ levels: [UInt8], qhOffset: Int, into y: UnsafeMutableRawPointer) {
    var qh: UInt32 = 0
    for j in 0..<16 {
      let xi0 = levels[j]
      let xi1 = levels[j + 16]
      y.storeBytes(of: (xi0 & 0x0F) | ((xi1 & 0x0F) << 4), toByteOffset: qhOffset + 4 + j, as: UInt8.self)
      qh |= (UInt32(xi0 & 0x10) >> 4) << UInt32(j)
      qh |= (UInt32(xi1 & 0x10) >> 4) << UInt32(j + 16)
    }
    y.storeBytes(of: qh.littleEndian, toByteOffset: qhOffset, as: UInt32.self)
  }

  // MARK: Q8_0

  static func quantizeQ8_0(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / blockSize {
      let xb = x + b * blockSize
      let out = y + b * 34
      var amax: Float = 0
      for j in 0..<blockSize {
        let a = abs(xb[j])
        amax = amax > a ? amax : a  // MAX(amax, fabsf(v))
      }
      let d = amax / 127
      let id: Float = d != 0 ? 1 / d : 0
      out.storeHalf(GGMLScalars.halfBits(d), at: 0)
      for j in 0..<blockSize {
        let q = GGMLScalars.truncatedInt32((xb[j] * id).rounded(.toNearestOrAwayFromZero))
        out.storeBytes(of: UInt8(truncatingIfNeeded: q), toByteOffset: 2 + j, as: UInt8.self)
      }
    }
  }

  static func dequantizeQ8_0(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for b in 0..<count / blockSize {
      let block = y + b * 34
      let d = block.loadHalf(at: 0)
      for j in 0..<blockSize { x[b * 32 + j] = Float(Int8(bitPattern: block.loadByte(at: 2 + j))) * d }
    }
  }

  // MARK: shared

  /// `sum_x2 / n_per_row`: the row variance the importance paths of the 32-element types add to `x²`.
  static func rowSigma2(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var sumX2: Float = 0
    for j in 0..<count { sumX2 += x[j] * x[j] }
    return sumX2 / Float(count)
  }
}
