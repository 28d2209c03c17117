/// Scalar references for ggml's table-based 32-element types (ggml-quants.c) and the plain float types.
///
/// Layouts: IQ4_NL (18 B) `f16 d, u8 qs[16]` with 4-bit indices into `kvalues_iq4nl`; MXFP4 (17 B)
/// `u8 e (E8M0), u8 qs[16]` with 4-bit E2M1 codes (`kvalues_mxfp4` holds them doubled, so `d` is half the E8M0
/// scale). Nibble order as Q4_0: low = element j, high = element j + 16.
enum NonLinearQuants {
  /// `kvalues_iq4nl`.
  static let iq4nlValues: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
  static let iq4nlFloatValues: [Float] = iq4nlValues.map(Float.init)
  /// `kvalues_mxfp4`: E2M1 values times two.
  static let mxfp4Values: [Int8] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

  // MARK: IQ4_NL

  /// `quantize_iq4_nl` (what `ggml_quantize_chunk` and llama-quantize run, `ntry` = 7), with or without an
  /// importance matrix.
  static func quantizeIQ4_NL(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    var L = [UInt8](repeating: 0, count: 32)
    for b in 0..<count / 32 {
      iq4nlBlock(x + 32 * b, importance: importance.map { $0 + 32 * b }, tries: 7, levels: &L, into: y + 18 * b)
    }
  }

  /// `quantize_row_iq4_nl_ref` (`ntry` = −1: no scale search, no requantization). An all-zero block reuses
  /// the indices of the previous block of the row, as ggml's stack buffer does (zero for the first one; ggml
  /// leaves it uninitialized).
  static func quantizeIQ4_NLDeterministic(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
    var L = [UInt8](repeating: 0, count: 32)
    for b in 0..<count / 32 { iq4nlBlock(x + 32 * b, importance: nil, tries: -1, levels: &L, into: y + 18 * b) }
  }

  /// `quantize_row_iq4_nl_impl` for one 32-element super-block of one 32-element block.
  static func iq4nlBlock(
    _ x: UnsafePointer<Float>, importance qw: UnsafePointer<Float>?, tries ntry: Int, levels L: inout [UInt8],
    into y: UnsafeMutableRawPointer
  ) {
    iq4nlValues.withUnsafeBufferPointer { tableBuffer in
      let values = tableBuffer.baseAddress!
      var sigma2: Float = 0
      for j in 0..<32 { sigma2 += x[j] * x[j] }
      sigma2 *= 2.0 / 32
      var weight = [Float](repeating: 0, count: 32)
      for j in 0..<32 { weight[j] = qw.map { QuantSearch.importanceWeight($0[j], sigma2: sigma2, x[j]) } ?? x[j] * x[j] }
      var amax: Float = 0
      var max: Float = 0
      for j in 0..<32 where abs(x[j]) > amax {
        amax = abs(x[j])
        max = x[j]
      }
      var scale: Float = 0
      if amax >= QuantSearch.groupMaxEpsilon {
        let v0 = Float(values[0])
        var d = ntry > 0 ? -max / v0 : max / v0
        var id = 1 / d
        var sumqx: Float = 0
        var sumq2: Float = 0
        for j in 0..<32 {
          let l = GGMLScalars.bestIndex(values, count: 16, id * x[j])
          L[j] = UInt8(l)
          let q = Float(values[l])
          sumqx += weight[j] * q * x[j]
          sumq2 += weight[j] * q * q
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0
        var best = d * sumqx
        for itry in stride(from: -ntry, through: ntry, by: 1) {
          id = Float(itry + Int(values[0])) / max
          sumqx = 0
          sumq2 = 0
          for j in 0..<32 {
            let q = Float(values[GGMLScalars.bestIndex(values, count: 16, id * x[j])])
            sumqx += weight[j] * q * x[j]
            sumq2 += weight[j] * q * q
          }
          if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2
            best = d * sumqx
          }
        }
        scale = d
      }
      y.storeHalf(GGMLScalars.halfBits(scale), at: 0)
      if ntry > 0 {
        let id: Float = scale != 0 ? 1 / scale : 0
        for j in 0..<32 { L[j] = UInt8(GGMLScalars.bestIndex(values, count: 16, id * x[j])) }
      }
      for j in 0..<16 { y.storeBytes(of: L[j] | (L[16 + j] << 4), toByteOffset: 2 + j, as: UInt8.self) }
    }
  }

  static func dequantizeIQ4_NL(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    dequantizeTable(y, count: count, table: iq4nlValues, blockBytes: 18, into: x) { $0.loadHalf(at: 0) }
  }

  // MARK: MXFP4

  static func quantizeMXFP4(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for b in 0..<count / 32 {
      let xb = x + 32 * b
      let out = y + 17 * b
      var amax: Float = 0
      for j in 0..<32 where amax < abs(xb[j]) { amax = abs(xb[j]) }
      let e: UInt8 =
        amax > 0 ? UInt8(truncatingIfNeeded: GGMLScalars.truncatedInt32(GGMLScalars.log2f(amax).rounded(.down) - 2 + 127)) : 0
      let d = GGMLScalars.e8m0Half(e)
      out.storeBytes(of: e, toByteOffset: 0, as: UInt8.self)
      for j in 0..<16 {
        out.storeBytes(of: mxfp4Index(xb[j], d) | (mxfp4Index(xb[16 + j], d) << 4), toByteOffset: 1 + j, as: UInt8.self)
      }
    }
  }

  /// `best_index_mxfp4`: the first code with the least `|value·d − x|`.
  static func mxfp4Index(_ x: Float, _ d: Float) -> UInt8 {
    var bestIndex: UInt8 = 0
    var bestError = abs(Float(mxfp4Values[0]) * d - x)
    for i in 1..<16 {
      let error = abs(Float(mxfp4Values[i]) * d - x)
      if error < bestError {
        bestIndex = UInt8(i)
        bestError = error
      }
    }
    return bestIndex
  }

  static func dequantizeMXFP4(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    dequantizeTable(y, count: count, table: mxfp4Values, blockBytes: 17, into: x) { GGMLScalars.e8m0Half($0.loadByte(at: 0)) }
  }

  /// `y[j] = table[code]·d` (IQ4_NL writes `d * value`, MXFP4 `value * d`: the same IEEE product).
  static func dequantizeTable(
    _ y: UnsafeRawPointer, count: Int, table: [Int8], blockBytes: Int, into x: UnsafeMutablePointer<Float>,
    scale: (UnsafeRawPointer) -> Float
  ) {
    let codes = blockBytes - 16
    for b in 0..<count / 32 {
      let block = y + blockBytes * b
      let d = scale(block)
      for j in 0..<16 {
        let q = block.loadByte(at: codes + j)
        x[32 * b + j] = d * Float(table[Int(q & 0x0F)])
        x[32 * b + j + 16] = d * Float(table[Int(q >> 4)])
      }
    }
  }

  // MARK: F32, F16, BF16

  static func quantizeF32(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for j in 0..<count { y.storeBytes(of: x[j].bitPattern.littleEndian, toByteOffset: 4 * j, as: UInt32.self) }
  }

  static func dequantizeF32(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for j in 0..<count { x[j] = Float(bitPattern: UInt32(littleEndian: y.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))) }
  }

  static func quantizeF16(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for j in 0..<count { y.storeHalf(GGMLScalars.halfBits(x[j]), at: 2 * j) }
  }

  static func dequantizeF16(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for j in 0..<count { x[j] = y.loadHalf(at: 2 * j) }
  }

  static func quantizeBF16(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer) {
    for j in 0..<count { y.storeHalf(GGMLScalars.bfloat16Bits(x[j]), at: 2 * j) }
  }

  static func dequantizeBF16(_ y: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
    for j in 0..<count {
      x[j] = GGMLScalars.float(bfloat16Bits: UInt16(littleEndian: y.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
    }
  }
}
