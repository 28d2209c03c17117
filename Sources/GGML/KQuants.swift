/// ggml's K-quants (256-element super-blocks, ggml-quants.c): `quantize_row_<type>_ref` without an
/// importance matrix, `quantize_row_<type>_impl` with one, and `dequantize_row_<type>`. The per-group scale
/// searches run through `GroupSearch` with the given kernel (scalar reference or SIMD lanes); everything else
/// is one port shared by both.
///
/// Layouts (little-endian, packed):
/// - Q2_K (84 B): `u8 scales[16]` (low nibble scale, high nibble min of each 16-group), `u8 qs[64]`, `f16 d`,
///   `f16 dmin`.
/// - Q3_K (110 B): `u8 hmask[32]`, `u8 qs[64]`, `u8 scales[12]` (sixteen 6-bit scales), `f16 d`.
/// - Q4_K (144 B): `f16 d`, `f16 dmin`, `u8 scales[12]` (eight 6-bit scales and mins), `u8 qs[128]`.
/// - Q5_K (176 B): as Q4_K, then `u8 qh[32]` before `qs[128]`.
/// - Q6_K (210 B): `u8 ql[128]`, `u8 qh[64]`, `i8 scales[16]`, `f16 d`.
enum KQuants {
  static let superBlock = 256

  // MARK: Q2_K

  static func quantizeQ2_K(
    _ row: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into out: UnsafeMutableRawPointer,
    kernel: SearchKernel
  ) {
    let groups = GroupSearch(kernel, groupLength: 16)
    var L = [UInt8](repeating: 0, count: 256)
    var weights = [Float](repeating: 0, count: 256)
    var mins = [Float](repeating: 0, count: 16)
    var scales = [Float](repeating: 0, count: 16)
    var sw = [Float](repeating: 0, count: 16)
    var Ls = [UInt8](repeating: 0, count: 16)
    var Lm = [UInt8](repeating: 0, count: 16)
    for i in 0..<count / superBlock {
      let x = row + i * superBlock
      let y = out + i * 84
      let packedScales = y
      L.withUnsafeMutableBufferPointer { L in
        if let importance {
          let qwBlock = importance + i * superBlock
          var sumX2: Float = 0
          for j in 0..<256 { sumX2 += x[j] * x[j] }
          let sigma2 = sumX2 / 256
          let search = QuantSearch.AffineSearch(rmin: -0.9, rdelta: 0.05, steps: 36, useMAD: false)
          for j in 0..<256 { weights[j] = QuantSearch.importanceWeight(qwBlock[j], sigma2: sigma2, x[j]) }
          for j in 0..<16 {
            var sum: Float = 0
            for l in 0..<16 { sum += weights[16 * j + l] }
            sw[j] = sum
          }
          groups.affine(x, weights: weights, groupCount: 16, maxLevel: 3, search, scales: &scales, theMins: &mins, levels: L.baseAddress!)
          let dm = QuantSearch.positiveScale(count: 16, maxLevel: 15, scales, levels: &Ls, weights: sw)
          let mm = QuantSearch.positiveScale(count: 16, maxLevel: 15, mins, levels: &Lm, weights: sw)
          y.storeHalf(GGMLScalars.halfBits(dm), at: 80)
          y.storeHalf(GGMLScalars.halfBits(mm), at: 82)
          for j in 0..<16 { packedScales.storeBytes(of: Ls[j] | (Lm[j] << 4), toByteOffset: j, as: UInt8.self) }
        } else {
          var maxScale: Float = 0
          var maxMin: Float = 0
          let search = QuantSearch.AffineSearch(rmin: -0.5, rdelta: 0.1, steps: 15, useMAD: true)
          for j in 0..<256 { weights[j] = abs(x[j]) }
          groups.affine(x, weights: weights, groupCount: 16, maxLevel: 3, search, scales: &scales, theMins: &mins, levels: L.baseAddress!)
          for j in 0..<16 {
            if scales[j] > maxScale { maxScale = scales[j] }
            if mins[j] > maxMin { maxMin = mins[j] }
          }
          var bytes = [UInt8](repeating: 0, count: 16)
          if maxScale > 0 {
            let iscale = 15 / maxScale
            for j in 0..<16 { bytes[j] = UInt8(truncatingIfNeeded: GGMLScalars.nearestInt(iscale * scales[j])) }
            y.storeHalf(GGMLScalars.halfBits(maxScale / 15), at: 80)
          } else {
            y.storeHalf(GGMLScalars.halfBits(0), at: 80)
          }
          if maxMin > 0 {
            let iscale = 15 / maxMin
            for j in 0..<16 { bytes[j] |= UInt8(truncatingIfNeeded: GGMLScalars.nearestInt(iscale * mins[j]) << 4) }
            y.storeHalf(GGMLScalars.halfBits(maxMin / 15), at: 82)
          } else {
            y.storeHalf(GGMLScalars.halfBits(0), at: 82)
          }
          for j in 0..<16 { packedScales.storeBytes(of: bytes[j], toByteOffset: j, as: UInt8.self) }
        }
        let d = UnsafeRawPointer(y).loadHalf(at: 80)
        let dmin = UnsafeRawPointer(y).loadHalf(at: 82)
        for j in 0..<16 {
          let sc = UnsafeRawPointer(y).loadByte(at: j)
          let dl = d * Float(sc & 0xF)
          if dl == 0 { continue }
          let ml = dmin * Float(sc >> 4)
          for ii in 0..<16 {
            let l = Int(GGMLScalars.nearestInt((x[16 * j + ii] + ml) / dl))
            L[16 * j + ii] = UInt8(Swift.max(0, Swift.min(3, l)))
          }
        }
        packTwoBit(UnsafeBufferPointer(L), into: y + 16)
      }
    }
  }

  /// `qs[j/4 + l] = L[j+l] | L[j+l+32] << 2 | L[j+l+64] << 4 | L[j+l+96] << 6` for each half of 128.
  static func packTwoBit(_ L: UnsafeBufferPointer<UInt8>, into qs: UnsafeMutableRawPointer) {
    for j in stride(from: 0, to: 256, by: 128) {
      for l in 0..<32 {
        let byte = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
        qs.storeBytes(of: byte, toByteOffset: j / 4 + l, as: UInt8.self)
      }
    }
  }

  static func dequantizeQ2_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    var y = out
    for i in 0..<count / superBlock {
      let block = blocks + i * 84
      let d = block.loadHalf(at: 80)
      let min = block.loadHalf(at: 82)
      var q = block + 16
      var scaleIndex = 0
      for _ in stride(from: 0, to: 256, by: 128) {
        var shift: UInt8 = 0
        for _ in 0..<4 {
          for half in 0..<2 {
            let sc = block.loadByte(at: scaleIndex)
            scaleIndex += 1
            let dl = d * Float(sc & 0xF)
            let ml = min * Float(sc >> 4)
            for l in 0..<16 {
              y.pointee = dl * Float((q.loadByte(at: l + 16 * half) >> shift) & 3) - ml
              y += 1
            }
          }
          shift += 2
        }
        q += 32
      }
    }
  }

  // MARK: Q3_K

  static func quantizeQ3_K(
    _ row: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into out: UnsafeMutableRawPointer,
    kernel: SearchKernel
  ) {
    let groups = GroupSearch(kernel, groupLength: 16)
    var L = [Int8](repeating: 0, count: 256)
    var scales = [Float](repeating: 0, count: 16)
    var weight = [Float](repeating: 0, count: 256)
    var sw = [Float](repeating: 0, count: 16)
    var Ls = [Int8](repeating: 0, count: 16)
    for i in 0..<count / superBlock {
      let x = row + i * superBlock
      let y = out + i * 110
      var packed = [UInt8](repeating: 0, count: 12)
      L.withUnsafeMutableBufferPointer { L in
        if let importance {
          let qwBlock = importance + i * superBlock
          var sumX2: Float = 0
          for j in 0..<256 { sumX2 += x[j] * x[j] }
          let sigma2 = 2 * sumX2 / 256
          for j in 0..<256 { weight[j] = QuantSearch.importanceWeight(qwBlock[j], sigma2: sigma2, x[j]) }
          for j in 0..<16 {
            var sum: Float = 0
            for l in 0..<16 { sum += weight[16 * j + l] }
            sw[j] = sum
          }
          groups.symmetric(x, weights: weight, groupCount: 16, maxLevel: 4, scales: &scales, levels: L.baseAddress!)
          let dBlock = QuantSearch.symmetricScale(count: 16, maxLevel: 32, scales, levels: &Ls, weights: sw)
          for j in 0..<16 { packQ3Scale(Int(Ls[j]), index: j, into: &packed) }
          y.storeHalf(GGMLScalars.halfBits(dBlock), at: 108)
        } else {
          var maxScale: Float = 0
          var amax: Float = 0
          groups.q3(x, groupCount: 16, maxLevel: 4, scales: &scales, levels: L.baseAddress!)
          for j in 0..<16 {
            let scale = abs(scales[j])
            if scale > amax {
              amax = scale
              maxScale = scales[j]
            }
          }
          if maxScale != 0 {
            let iscale = -32 / maxScale
            for j in 0..<16 {
              var l = Int8(truncatingIfNeeded: GGMLScalars.nearestInt(iscale * scales[j]))
              l = Swift.max(-32, Swift.min(31, l)) + 32
              packQ3Scale(Int(l), index: j, into: &packed)
            }
            y.storeHalf(GGMLScalars.halfBits(1 / iscale), at: 108)
          } else {
            y.storeHalf(GGMLScalars.halfBits(0), at: 108)
          }
        }
        for j in 0..<12 { y.storeBytes(of: packed[j], toByteOffset: 96 + j, as: UInt8.self) }
        let d = UnsafeRawPointer(y).loadHalf(at: 108)
        for j in 0..<16 {
          var sc = Int8(bitPattern: j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4)
          sc = (sc | Int8(truncatingIfNeeded: ((packed[8 + j % 4] >> UInt8(2 * (j / 4))) & 3) << 4)) - 32
          let dl = d * Float(sc)
          if dl == 0 { continue }
          for ii in 0..<16 {
            let l = Int(GGMLScalars.nearestInt(x[16 * j + ii] / dl))
            L[16 * j + ii] = Int8(Swift.max(-4, Swift.min(3, l)) + 4)
          }
        }
        var hmask = [UInt8](repeating: 0, count: 32)
        var m = 0
        var hm: UInt8 = 1
        var low = [UInt8](repeating: 0, count: 256)
        for j in 0..<256 {
          if L[j] > 3 {
            hmask[m] |= hm
            L[j] -= 4
          }
          low[j] = UInt8(bitPattern: L[j])
          m += 1
          if m == 32 {
            m = 0
            hm <<= 1
          }
        }
        for j in 0..<32 { y.storeBytes(of: hmask[j], toByteOffset: j, as: UInt8.self) }
        low.withUnsafeBufferPointer { packTwoBit($0, into: y + 32) }
      }
    }
  }

  /// Stores 6-bit scale `l` (0..<64) of sub-block `j`: low nibbles in bytes 0-7, high 2 bits in bytes 8-11.
  static func packQ3Scale(_ level: Int, index j: Int, into packed: inout [UInt8]) {
    if j < 8 {
      packed[j] = UInt8(truncatingIfNeeded: level & 0xF)
    } else {
      packed[j - 8] |= UInt8(truncatingIfNeeded: (level & 0xF) << 4)
    }
    packed[j % 4 + 8] |= UInt8(truncatingIfNeeded: (level >> 4) << (2 * (j / 4)))
  }

  static func dequantizeQ3_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    let kmask1: UInt32 = 0x0303_0303
    let kmask2: UInt32 = 0x0f0f_0f0f
    var y = out
    for i in 0..<count / superBlock {
      let block = blocks + i * 110
      let dAll = block.loadHalf(at: 108)
      var aux = (0..<3).map { UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 96 + 4 * $0, as: UInt32.self)) } + [0]
      let tmp = aux[2]
      aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
      aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
      aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
      aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
      let scales = (0..<16).map { Int8(truncatingIfNeeded: aux[$0 / 4] >> UInt32(8 * ($0 % 4))) }
      var q = block + 32
      var m: UInt8 = 1
      var scaleIndex = 0
      for _ in stride(from: 0, to: 256, by: 128) {
        var shift: UInt8 = 0
        for _ in 0..<4 {
          for half in 0..<2 {
            let dl = dAll * Float(Int(scales[scaleIndex]) - 32)
            scaleIndex += 1
            for l in 0..<16 {
              let low = Int((q.loadByte(at: l + 16 * half) >> shift) & 3)
              let high = block.loadByte(at: l + 16 * half) & m != 0 ? 0 : 4
              y.pointee = dl * Float(low - high)
              y += 1
            }
          }
          shift += 2
          m <<= 1
        }
        q += 32
      }
    }
  }

  // MARK: Q4_K and Q5_K

  static func quantizeQ4_K(
    _ row: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into out: UnsafeMutableRawPointer,
    kernel: SearchKernel
  ) {
    quantizeAffineK(row, count: count, importance: importance, maxLevel: 15, into: out, kernel: kernel)
  }

  static func quantizeQ5_K(
    _ row: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into out: UnsafeMutableRawPointer,
    kernel: SearchKernel
  ) {
    quantizeAffineK(row, count: count, importance: importance, maxLevel: 31, into: out, kernel: kernel)
  }

  /// Q4_K (`maxLevel` 15) and Q5_K (31): eight 32-groups with 6-bit scales and mins.
  static func quantizeAffineK(
    _ row: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, maxLevel: Int,
    into out: UnsafeMutableRawPointer, kernel: SearchKernel
  ) {
    let blockBytes = maxLevel == 15 ? 144 : 176
    let superBlocks = count / superBlock
    let groupCount = superBlocks * 8
    // The searches of all 32-groups of the row run first (one lane batch covers two super-blocks), then each
    // super-block quantizes its scales and packs.
    var weights = [Float](repeating: 0, count: count)
    var sw = [Float](repeating: 0, count: groupCount)
    let search: QuantSearch.AffineSearch
    if let importance {
      search = QuantSearch.AffineSearch(rmin: -0.9, rdelta: 0.05, steps: 36, useMAD: false)
      for i in 0..<superBlocks {
        let x = row + i * superBlock
        var sumX2: Float = 0
        for l in 0..<256 { sumX2 += x[l] * x[l] }
        let sigma2 = 2 * sumX2 / 256
        for l in 0..<256 { weights[i * 256 + l] = QuantSearch.importanceWeight(importance[i * 256 + l], sigma2: sigma2, x[l]) }
        for j in 0..<8 {
          var sum: Float = 0
          for l in 0..<32 { sum += weights[i * 256 + 32 * j + l] }
          sw[i * 8 + j] = sum
        }
      }
    } else {
      search =
        maxLevel == 15
        ? QuantSearch.AffineSearch(rmin: -1, rdelta: 0.1, steps: 20, useMAD: false)
        : QuantSearch.AffineSearch(rmin: -0.5, rdelta: 0.1, steps: 15, useMAD: false)
      for g in 0..<groupCount {
        let x = row + 32 * g
        var sumX2: Float = 0
        for l in 0..<32 { sumX2 += x[l] * x[l] }
        let avX = (sumX2 / 32).squareRoot()
        for l in 0..<32 { weights[32 * g + l] = avX + abs(x[l]) }
      }
    }
    var L = [UInt8](repeating: 0, count: count)
    var scales = [Float](repeating: 0, count: groupCount)
    var mins = [Float](repeating: 0, count: groupCount)
    GroupSearch(kernel, groupLength: 32).affine(
      row, weights: weights, groupCount: groupCount, maxLevel: maxLevel, search, scales: &scales, theMins: &mins, levels: &L)

    var Ls = [UInt8](repeating: 0, count: 8)
    var Lm = [UInt8](repeating: 0, count: 8)
    for i in 0..<superBlocks {
      let x = row + i * superBlock
      let y = out + i * blockBytes
      var packed = [UInt8](repeating: 0, count: 12)
      if importance != nil {
        let dBlock = scales.withUnsafeBufferPointer { s in
          sw.withUnsafeBufferPointer { w in QuantSearch.positiveScale(count: 8, maxLevel: 63, s.baseAddress! + 8 * i, levels: &Ls, weights: w.baseAddress! + 8 * i) }
        }
        let mBlock = mins.withUnsafeBufferPointer { m in
          sw.withUnsafeBufferPointer { w in QuantSearch.positiveScale(count: 8, maxLevel: 63, m.baseAddress! + 8 * i, levels: &Lm, weights: w.baseAddress! + 8 * i) }
        }
        // quantize_row_q5_K_impl clamps the levels to 63, quantize_row_q4_K_impl does not (they never exceed
        // it unless a scale is negative, where the truncated level differs).
        let clamp: UInt8 = maxLevel == 31 ? 63 : 255
        for j in 0..<8 { packScaleMin(Swift.min(clamp, Ls[j]), Swift.min(clamp, Lm[j]), index: j, into: &packed) }
        y.storeHalf(GGMLScalars.halfBits(dBlock), at: 0)
        y.storeHalf(GGMLScalars.halfBits(mBlock), at: 2)
      } else {
        var maxScale: Float = 0
        var maxMin: Float = 0
        for j in 0..<8 {
          if scales[8 * i + j] > maxScale { maxScale = scales[8 * i + j] }
          if mins[8 * i + j] > maxMin { maxMin = mins[8 * i + j] }
        }
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        for j in 0..<8 {
          let ls = UInt8(truncatingIfNeeded: GGMLScalars.nearestInt(invScale * scales[8 * i + j]))
          let lm = UInt8(truncatingIfNeeded: GGMLScalars.nearestInt(invMin * mins[8 * i + j]))
          packScaleMin(Swift.min(63, ls), Swift.min(63, lm), index: j, into: &packed)
        }
        y.storeHalf(GGMLScalars.halfBits(maxScale / 63), at: 0)
        y.storeHalf(GGMLScalars.halfBits(maxMin / 63), at: 2)
      }
      for j in 0..<12 { y.storeBytes(of: packed[j], toByteOffset: 4 + j, as: UInt8.self) }
      let d = UnsafeRawPointer(y).loadHalf(at: 0)
      let dmin = UnsafeRawPointer(y).loadHalf(at: 2)
      let base = i * superBlock
      for j in 0..<8 {
        let (sc, m) = scaleMin(j, packed)
        let dl = d * Float(sc)
        if dl == 0 { continue }
        let dm = dmin * Float(m)
        L.withUnsafeMutableBufferPointer { levels in
          affineLevels(x + 32 * j, dl: dl, dm: dm, maxLevel: maxLevel, into: levels.baseAddress! + base + 32 * j, kernel: kernel)
        }
      }
      if maxLevel == 15 {
        for j in stride(from: 0, to: 256, by: 64) {
          for l in 0..<32 { y.storeBytes(of: L[base + j + l] | (L[base + j + l + 32] << 4), toByteOffset: 16 + j / 2 + l, as: UInt8.self) }
        }
      } else {
        var qh = [UInt8](repeating: 0, count: 32)
        var m1: UInt8 = 1
        var m2: UInt8 = 2
        for n in stride(from: 0, to: 256, by: 64) {
          for j in 0..<32 {
            var l1 = L[base + n + j]
            if l1 > 15 {
              l1 -= 16
              qh[j] |= m1
            }
            var l2 = L[base + n + j + 32]
            if l2 > 15 {
              l2 -= 16
              qh[j] |= m2
            }
            y.storeBytes(of: l1 | (l2 << 4), toByteOffset: 48 + n / 2 + j, as: UInt8.self)
          }
          m1 <<= 2
          m2 <<= 2
        }
        for j in 0..<32 { y.storeBytes(of: qh[j], toByteOffset: 16 + j, as: UInt8.self) }
      }
    }
  }

  /// `levels[i] = MAX(0, MIN(maxLevel, nearest_int((x[i] + dm) / dl)))` for the 32 elements of one group, the
  /// last step of `quantize_row_q4_K_ref` / `q5_K`: element by element, or eight lanes at a time with the same
  /// operations per lane.
  @inline(__always)
  static func affineLevels(
    _ x: UnsafePointer<Float>, dl: Float, dm: Float, maxLevel: Int, into levels: UnsafeMutablePointer<UInt8>, kernel: SearchKernel
  ) {
    switch kernel {
    case .scalar:
      for ii in 0..<32 {
        let l = Int(GGMLScalars.nearestInt((x[ii] + dm) / dl))
        levels[ii] = UInt8(Swift.max(0, Swift.min(maxLevel, l)))
      }
    case .lanes:
      typealias Lanes = QuantSearchLanes
      let shift = Lanes.Floats(repeating: dm)
      let scale = Lanes.Floats(repeating: dl)
      let low = Lanes.Ints()
      let high = Lanes.Ints(repeating: Int32(maxLevel))
      for k in 0..<4 {
        let v = UnsafeRawPointer(x + 8 * k).loadUnaligned(as: Lanes.Floats.self)
        let q = Lanes.clamp(((v + shift) / scale).laneNearestInt, low, high)
        UnsafeMutableRawPointer(levels + 8 * k).storeBytes(of: LegacyQuantsFast.lowBytes(q), as: SIMD8<UInt8>.self)
      }
    }
  }

  /// `levels[i] = MAX(-32, MIN(31, nearest_int(x[i] / dl))) + 32` for the 16 elements of one Q6_K group:
  /// element by element, or eight lanes at a time with the same operations per lane.
  @inline(__always)
  static func symmetricLevels(_ x: UnsafePointer<Float>, dl: Float, into levels: UnsafeMutablePointer<Int8>, kernel: SearchKernel) {
    switch kernel {
    case .scalar:
      for ii in 0..<16 {
        let l = Int(GGMLScalars.nearestInt(x[ii] / dl))
        levels[ii] = Int8(Swift.max(-32, Swift.min(31, l)) + 32)
      }
    case .lanes:
      typealias Lanes = QuantSearchLanes
      let scale = Lanes.Floats(repeating: dl)
      let low = Lanes.Ints(repeating: -32)
      let high = Lanes.Ints(repeating: 31)
      let offset = Lanes.Ints(repeating: 32)
      for k in 0..<2 {
        let v = UnsafeRawPointer(x + 8 * k).loadUnaligned(as: Lanes.Floats.self)
        let q = Lanes.clamp((v / scale).laneNearestInt, low, high) &+ offset
        UnsafeMutableRawPointer(levels + 8 * k).storeBytes(of: LegacyQuantsFast.lowBytes(q), as: SIMD8<UInt8>.self)
      }
    }
  }

  /// Packs 6-bit scale `ls` and min `lm` of group `j` into the 12 scale bytes of Q4_K/Q5_K.
  static func packScaleMin(_ ls: UInt8, _ lm: UInt8, index j: Int, into packed: inout [UInt8]) {
    if j < 4 {
      packed[j] = ls
      packed[j + 4] = lm
    } else {
      packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
      packed[j - 4] |= (ls >> 4) << 6
      packed[j] |= (lm >> 4) << 6
    }
  }

  /// `get_scale_min_k4`.
  @inline(__always)
  static func scaleMin(_ j: Int, _ q: [UInt8]) -> (UInt8, UInt8) {
    if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
    return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
  }

  static func dequantizeQ4_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    dequantizeAffineK(blocks, count: count, fiveBit: false, into: out)
  }

  static func dequantizeQ5_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    dequantizeAffineK(blocks, count: count, fiveBit: true, into: out)
  }

  static func dequantizeAffineK(_ blocks: UnsafeRawPointer, count: Int, fiveBit: Bool, into out: UnsafeMutablePointer<Float>) {
    let blockBytes = fiveBit ? 176 : 144
    var y = out
    for i in 0..<count / superBlock {
      let block = blocks + i * blockBytes
      let d = block.loadHalf(at: 0)
      let min = block.loadHalf(at: 2)
      let packed = (0..<12).map { block.loadByte(at: 4 + $0) }
      var q = block + (fiveBit ? 48 : 16)
      var u1: UInt8 = 1
      var u2: UInt8 = 2
      var scaleIndex = 0
      for _ in stride(from: 0, to: 256, by: 64) {
        let (sc1, m1) = scaleMin(scaleIndex, packed)
        let (sc2, m2) = scaleMin(scaleIndex + 1, packed)
        let d1 = d * Float(sc1)
        let min1 = min * Float(m1)
        let d2 = d * Float(sc2)
        let min2 = min * Float(m2)
        for l in 0..<32 {
          let high: UInt8 = fiveBit && block.loadByte(at: 16 + l) & u1 != 0 ? 16 : 0
          y[l] = d1 * Float((q.loadByte(at: l) & 0xF) + high) - min1
        }
        for l in 0..<32 {
          let high: UInt8 = fiveBit && block.loadByte(at: 16 + l) & u2 != 0 ? 16 : 0
          y[32 + l] = d2 * Float((q.loadByte(at: l) >> 4) + high) - min2
        }
        y += 64
        q += 32
        scaleIndex += 2
        u1 <<= 2
        u2 <<= 2
      }
    }
  }

  // MARK: Q6_K

  static func quantizeQ6_K(
    _ row: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?, into out: UnsafeMutableRawPointer,
    kernel: SearchKernel
  ) {
    let groups = GroupSearch(kernel, groupLength: 16)
    var L = [Int8](repeating: 0, count: 256)
    var scales = [Float](repeating: 0, count: 16)
    for i in 0..<count / superBlock {
      let x = row + i * superBlock
      let y = out + i * 210
      L.withUnsafeMutableBufferPointer { L in
        var maxScale: Float = 0
        var maxAbsScale: Float = 0
        groups.symmetric(
          x, weights: importance.map { $0 + i * superBlock }, groupCount: 16, maxLevel: 32, scales: &scales, levels: L.baseAddress!)
        for ib in 0..<16 {
          let scale = scales[ib]
          if abs(scale) > maxAbsScale {
            maxAbsScale = abs(scale)
            maxScale = scale
          }
        }
        if maxAbsScale < QuantSearch.groupMaxEpsilon {
          y.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
          y.storeHalf(GGMLScalars.halfBits(0), at: 208)
          return
        }
        let iscale = -128 / maxScale
        y.storeHalf(GGMLScalars.halfBits(1 / iscale), at: 208)
        var packedScales = [Int8](repeating: 0, count: 16)
        for ib in 0..<16 {
          packedScales[ib] = Int8(truncatingIfNeeded: Swift.min(127, GGMLScalars.nearestInt(iscale * scales[ib])))
          y.storeBytes(of: packedScales[ib], toByteOffset: 192 + ib, as: Int8.self)
        }
        let d = UnsafeRawPointer(y).loadHalf(at: 208)
        for j in 0..<16 {
          let dl = d * Float(packedScales[j])
          if dl == 0 { continue }
          symmetricLevels(x + 16 * j, dl: dl, into: L.baseAddress! + 16 * j, kernel: kernel)
        }
        for j in stride(from: 0, to: 256, by: 128) {
          let ql = y + j / 2
          let qh = y + 128 + j / 4
          for l in 0..<32 {
            let v0 = UInt8(bitPattern: L[j + l]), v1 = UInt8(bitPattern: L[j + l + 32])
            let v2 = UInt8(bitPattern: L[j + l + 64]), v3 = UInt8(bitPattern: L[j + l + 96])
            ql.storeBytes(of: (v0 & 0xF) | ((v2 & 0xF) << 4), toByteOffset: l, as: UInt8.self)
            ql.storeBytes(of: (v1 & 0xF) | ((v3 & 0xF) << 4), toByteOffset: l + 32, as: UInt8.self)
            qh.storeBytes(of: (v0 >> 4) | ((v1 >> 4) << 2) | ((v2 >> 4) << 4) | ((v3 >> 4) << 6), toByteOffset: l, as: UInt8.self)
          }
        }
      }
    }
  }

  static func dequantizeQ6_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    var y = out
    for i in 0..<count / superBlock {
      let block = blocks + i * 210
      let d = block.loadHalf(at: 208)
      var ql = block
      var qh = block + 128
      var sc = block + 192
      for _ in stride(from: 0, to: 256, by: 128) {
        for l in 0..<32 {
          let s = l / 16
          let h = qh.loadByte(at: l)
          let q1 = Int8(bitPattern: (ql.loadByte(at: l) & 0xF) | (((h >> 0) & 3) << 4)) - 32
          let q2 = Int8(bitPattern: (ql.loadByte(at: l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32
          let q3 = Int8(bitPattern: (ql.loadByte(at: l) >> 4) | (((h >> 4) & 3) << 4)) - 32
          let q4 = Int8(bitPattern: (ql.loadByte(at: l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
          y[l] = d * Float(Int8(bitPattern: sc.loadByte(at: s))) * Float(q1)
          y[l + 32] = d * Float(Int8(bitPattern: sc.loadByte(at: s + 2))) * Float(q2)
          y[l + 64] = d * Float(Int8(bitPattern: sc.loadByte(at: s + 4))) * Float(q3)
          y[l + 96] = d * Float(Int8(bitPattern: sc.loadByte(at: s + 6))) * Float(q4)
        }
        y += 128
        ql += 64
        qh += 32
        sc += 8
      }
    }
  }
}
