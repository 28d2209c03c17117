import TensorCore

/// `--search`: per group (block), try a small grid of clipping ratios and keep the scale (and zero) with the
/// least squared reconstruction error, as llama.cpp's k-quants and AWQ's clip search do. No calibration data;
/// deterministic (candidates in a fixed order, a later one wins only when strictly better, so ratio 1.0, the
/// round-to-nearest result, wins ties).
///
/// Each format keeps its consumer's own element rounding and stored-scale dtype; only the choice of scale
/// changes, so every reader decodes the result unchanged. The error is measured against the value the
/// consumer's dequantizer produces (stored scale, its rounding).
public enum ClipSearch {
  /// Ratios applied to the group's absolute maximum (symmetric grids, MXFP4, NVFP4).
  public static let symmetricRatios: [Float] = [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7]
  /// Ratios applied independently to the group's minimum and maximum (asymmetric grids): 25 pairs.
  public static let asymmetricRatios: [Float] = [1, 0.95, 0.9, 0.85, 0.8]

  /// Candidate (minimum ratio, maximum ratio) pairs for `symmetric`.
  static func candidates(symmetric: Bool) -> [(Float, Float)] {
    if symmetric { return symmetricRatios.map { ($0, $0) } }
    return asymmetricRatios.flatMap { a in asymmetricRatios.map { b in (a, b) } }
  }

  /// Runs `body(row)` for every row, rows in parallel when `parallel`.
  static func forEachRow(rowCount: Int, columnCount: Int, parallel: Bool, _ body: @Sendable (Int) -> Void) {
    if !parallel {
      for r in 0..<rowCount { body(r) }
      return
    }
    Parallel.forEachChunk(count: rowCount, minimumChunk: max(1, 4096 / columnCount)) { range in
      for r in range { body(r) }
    }
  }
}

// MARK: int4 (compressed-tensors rule)

extension Int4GroupQuantizer {
  /// One element's unsigned code under compressed-tensors' arithmetic.
  @inline(__always)
  static func elementCode(
    _ x: Float, scale: Float, zeroPoint: Int8, symmetry: Int4Symmetry, arithmetic: CompressedTensorsArithmetic,
    dtype: DType
  ) -> UInt8 {
    var v: Float
    switch arithmetic {
    case .weightDType:
      v = GroupQuantRounding.round(x / scale, to: dtype)
      if symmetry == .asymmetric { v = GroupQuantRounding.round(v + Float(zeroPoint), to: dtype) }
    case .float32:
      v = x / scale
      if symmetry == .asymmetric { v += Float(zeroPoint) }
    }
    return UInt8(Int(min(max(v, -8), 7).rounded(.toNearestOrEven)) + 8)
  }

  /// Eight unsigned codes under compressed-tensors' arithmetic (the fast path's element kernel).
  @inline(__always)
  static func codes8(
    _ x: SIMD8<Float>, scale: Float, zeroPoint: Int8, symmetry: Int4Symmetry, arithmetic: CompressedTensorsArithmetic,
    dtype: DType
  ) -> SIMD8<UInt32> {
    var v = x / SIMD8(repeating: scale)
    let zero = SIMD8<Float>(repeating: Float(zeroPoint))
    switch arithmetic {
    case .weightDType:
      v = GroupQuantRounding.round(v, to: dtype)
      if symmetry == .asymmetric { v = GroupQuantRounding.round(v + zero, to: dtype) }
    case .float32:
      if symmetry == .asymmetric { v += zero }
    }
    let clamped = GroupQuantRounding.minimum(GroupQuantRounding.maximum(v, SIMD8(repeating: -8)), SIMD8(repeating: 7))
    return (GroupQuantRounding.roundedBits(clamped) &+ 8) & 0xF
  }

  /// compressed-tensors int4 with `--search`: the clip ratio per group that minimises the squared error of
  /// compressed-tensors' own dequantization. `parallel: false` is the sequential reference.
  public static func quantizeWithClipSearch(
    _ weight: WeightMatrix, groupSize: Int, symmetry: Int4Symmetry,
    arithmetic: CompressedTensorsArithmetic = .weightDType, scaleDType: DType? = nil, parallel: Bool = true
  ) throws(FormatQuantizationError) -> Int4GroupResult {
    let storage = try validate(weight, groupSize: groupSize, scaleDType: scaleDType)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let groups = cols / groupSize
    let dtype = weight.dtype
    let candidates = ClipSearch.candidates(symmetric: symmetry == .symmetric)
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [Float](repeating: 0, count: rows * groups)
    var zeros = [Int8](repeating: 0, count: rows * groups)
    let input = SharedRawBuffer(UnsafeRawBufferPointer(weight.values))
    codes.withUnsafeMutableBufferPointer { codeBuffer in
      scales.withUnsafeMutableBufferPointer { scaleBuffer in
        zeros.withUnsafeMutableBufferPointer { zeroBuffer in
          let codeOut = DisjointMutableBuffer(codeBuffer)
          let scaleOut = DisjointMutableBuffer(scaleBuffer)
          let zeroOut = DisjointMutableBuffer(zeroBuffer)
          ClipSearch.forEachRow(rowCount: rows, columnCount: cols, parallel: parallel) { r in
            let x = input.bytes.assumingMemoryBound(to: Float.self)
            for g in 0..<groups {
              let start = r * cols + g * groupSize
              var mn8 = SIMD8<Float>(repeating: .infinity)
              var mx8 = SIMD8<Float>(repeating: -.infinity)
              for i in stride(from: start, to: start + groupSize, by: 8) {
                let v = GroupQuantRounding.load8(x, i)
                mn8 = GroupQuantRounding.minimum(mn8, v)
                mx8 = GroupQuantRounding.maximum(mx8, v)
              }
              let mn = mn8.min()
              let mx = mx8.max()
              var bestError = Float.infinity
              var best: (scale: Float, zeroPoint: Int8) = (1, 0)
              for (a, b) in candidates {
                let (scale, zp) = groupParameters(
                  minimum: mn * a, maximum: mx * b, symmetry: symmetry, dtype: dtype, storage: storage)
                var error8 = SIMD8<Float>(repeating: 0)
                let zeroLevel = SIMD8<Float>(repeating: Float(Int(zp) + 8))
                for i in stride(from: start, to: start + groupSize, by: 8) {
                  let x8 = GroupQuantRounding.load8(x, i)
                  let code = codes8(
                    x8, scale: scale, zeroPoint: zp, symmetry: symmetry, arithmetic: arithmetic, dtype: dtype)
                  let level = GroupQuantRounding.floats(code) - zeroLevel
                  let d = x8 - GroupQuantRounding.round(level * scale, to: storage)
                  error8 += d * d
                }
                let error = error8.sum()
                if error < bestError {
                  bestError = error
                  best = (scale, zp)
                }
              }
              scaleOut.buffer[r * groups + g] = best.scale
              zeroOut.buffer[r * groups + g] = best.zeroPoint
              for i in stride(from: start, to: start + groupSize, by: 8) {
                let code = codes8(
                  GroupQuantRounding.load8(x, i), scale: best.scale, zeroPoint: best.zeroPoint, symmetry: symmetry,
                  arithmetic: arithmetic, dtype: dtype)
                GroupQuantRounding.store8(code, into: codeOut, at: i)
              }
            }
          }
        }
      }
    }
    return Int4GroupResult(
      rowCount: rows, columnCount: cols, groupSize: groupSize, codes: codes, scales: scales,
      zeroPoints: symmetry == .asymmetric ? zeros : nil, scaleDType: storage)
  }
}

// MARK: MLX affine

extension MLXAffine {
  /// MLX affine with `--search`: min and max shrunk independently (25 pairs); the error is that of
  /// `mx.dequantize` with the stored (rounded) scale and bias. `parallel: false` is the sequential reference.
  public static func quantizeWithClipSearch(
    _ weight: WeightMatrix, groupSize: Int, bits: Int, parallel: Bool = true
  ) throws(FormatQuantizationError) -> Result {
    try validate(weight, groupSize: groupSize, bits: bits)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let groups = cols / groupSize
    let levels = Float((1 << bits) - 1)
    let dtype = weight.dtype
    let candidates = ClipSearch.candidates(symmetric: false)
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [Float](repeating: 0, count: rows * groups)
    var biases = [Float](repeating: 0, count: rows * groups)
    let input = SharedRawBuffer(UnsafeRawBufferPointer(weight.values))
    codes.withUnsafeMutableBufferPointer { codeBuffer in
      scales.withUnsafeMutableBufferPointer { scaleBuffer in
        biases.withUnsafeMutableBufferPointer { biasBuffer in
          let codeOut = DisjointMutableBuffer(codeBuffer)
          let scaleOut = DisjointMutableBuffer(scaleBuffer)
          let biasOut = DisjointMutableBuffer(biasBuffer)
          ClipSearch.forEachRow(rowCount: rows, columnCount: cols, parallel: parallel) { r in
            let x = input.bytes.assumingMemoryBound(to: Float.self)
            for g in 0..<groups {
              let start = r * cols + g * groupSize
              var wMin = Float.infinity
              var wMax = -Float.infinity
              for i in start..<start + groupSize {
                wMax = max(wMax, x[i])
                wMin = min(wMin, x[i])
              }
              var bestError = Float.infinity
              var best: (scale: Float, bias: Float) = (1, 0)
              for (a, b) in candidates {
                let (scale, bias) = groupParameters(minimum: wMin * a, maximum: wMax * b, levels: levels)
                let storedScale = GroupQuantRounding.round(scale, to: dtype)
                let storedBias = GroupQuantRounding.round(bias, to: dtype)
                var error: Float = 0
                for i in start..<start + groupSize {
                  let q = min(max(((x[i] - bias) / scale).rounded(.toNearestOrEven), 0), levels)
                  let product = GroupQuantRounding.round(storedScale * q, to: dtype)
                  let d = x[i] - GroupQuantRounding.round(product + storedBias, to: dtype)
                  error += d * d
                }
                if error < bestError {
                  bestError = error
                  best = (scale, bias)
                }
              }
              for i in start..<start + groupSize {
                codeOut.buffer[i] = UInt8(
                  min(max(((x[i] - best.bias) / best.scale).rounded(.toNearestOrEven), 0), levels))
              }
              scaleOut.buffer[r * groups + g] = GroupQuantRounding.round(best.scale, to: dtype)
              biasOut.buffer[r * groups + g] = GroupQuantRounding.round(best.bias, to: dtype)
            }
          }
        }
      }
    }
    return Result(
      rowCount: rows, columnCount: cols, groupSize: groupSize, bits: bits, codes: codes, scales: scales,
      biases: biases, scaleDType: dtype)
  }
}

// MARK: MXFP4

extension MXFP4 {
  /// MXFP4 with `--search`: per block, the rule's exponent or one less (which clips the largest elements but
  /// halves the step for the rest), whichever reconstructs better. `parallel: false` is the sequential
  /// reference.
  public static func quantizeWithClipSearch(
    _ weight: WeightMatrix, rule: ScaleRule, parallel: Bool = true
  ) throws(FormatQuantizationError) -> Result {
    try validate(weight)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let blocks = cols / blockSize
    let dtype = weight.dtype
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [UInt8](repeating: 0, count: rows * blocks)
    let input = SharedRawBuffer(UnsafeRawBufferPointer(weight.values))
    codes.withUnsafeMutableBufferPointer { codeBuffer in
      scales.withUnsafeMutableBufferPointer { scaleBuffer in
        let codeOut = DisjointMutableBuffer(codeBuffer)
        let scaleOut = DisjointMutableBuffer(scaleBuffer)
        ClipSearch.forEachRow(rowCount: rows, columnCount: cols, parallel: parallel) { r in
          let x = input.bytes.assumingMemoryBound(to: Float.self)
          for b in r * blocks..<(r + 1) * blocks {
            let start = b * blockSize
            // The rule's exponent, then the element code of x under exponent e.
            let base: UInt8
            switch rule {
            case .compressedTensors:
              var amax: Float = 0
              for i in start..<start + blockSize { amax = max(amax, abs(x[i])) }
              base = compressedTensorsScale(amax: amax, dtype: dtype).byte
            case .gptOss:
              var amax: Float = 0
              for i in start..<start + blockSize { amax = max(amax, abs(GroupQuantRounding.bfloat16(x[i]))) }
              base = gptOssScale(amax: amax).byte
            }
            func code(_ value: Float, exponent: UInt8) -> UInt8 {
              let power = Float(sign: .plus, exponent: Int(exponent) - 127, significand: 1)
              switch rule {
              case .compressedTensors:
                let divisor = GroupQuantRounding.round(power, to: dtype)
                let v = min(max(GroupQuantRounding.round(value / divisor, to: dtype), -6), 6)
                return FP4E2M1.encodeSignIfNegative(v)
              case .gptOss:
                return FP4E2M1.encodeSignBit(GroupQuantRounding.bfloat16(value) * (1 / power))
              }
            }
            var bestExponent = base
            if base > 1 && base < 255
              && (rule == .gptOss
                || GroupQuantRounding.round(Float(sign: .plus, exponent: Int(base) - 128, significand: 1), to: dtype)
                  != 0)
            {
              var errors: [Float] = [0, 0]
              for (slot, exponent) in [base, base - 1].enumerated() {
                for i in start..<start + blockSize {
                  let d = x[i] - FP4E2M1.decode(code(x[i], exponent: exponent)) * E8M0.decode(exponent)
                  errors[slot] += d * d
                }
              }
              if errors[1] < errors[0] { bestExponent = base - 1 }
            }
            scaleOut.buffer[b] = bestExponent
            for i in start..<start + blockSize { codeOut.buffer[i] = code(x[i], exponent: bestExponent) }
          }
        }
      }
    }
    return Result(rowCount: rows, columnCount: cols, codes: codes, scales: scales)
  }
}

// MARK: NVFP4

extension NVFP4 {
  /// NVFP4 with `--search`: per block, the block maximum shrunk by each ratio before the producer's block-scale
  /// formula; the per-tensor scale is unchanged. `parallel: false` is the sequential reference.
  public static func quantizeWithClipSearch(
    _ weight: WeightMatrix, producer: Producer, parallel: Bool = true
  ) throws(FormatQuantizationError) -> Result {
    try validate(weight)
    let rows = weight.rowCount
    let cols = weight.columnCount
    let blocks = cols / blockSize
    let dtype = weight.dtype
    var amax: Float = 0
    for v in weight.values { amax = max(amax, abs(v)) }
    let scale2 = tensorScale(amax: amax, producer: producer, dtype: dtype)
    var codes = [UInt8](repeating: 0, count: rows * cols)
    var scales = [UInt8](repeating: 0, count: rows * blocks)
    let input = SharedRawBuffer(UnsafeRawBufferPointer(weight.values))
    codes.withUnsafeMutableBufferPointer { codeBuffer in
      scales.withUnsafeMutableBufferPointer { scaleBuffer in
        let codeOut = DisjointMutableBuffer(codeBuffer)
        let scaleOut = DisjointMutableBuffer(scaleBuffer)
        ClipSearch.forEachRow(rowCount: rows, columnCount: cols, parallel: parallel) { r in
          let x = input.bytes.assumingMemoryBound(to: Float.self)
          for b in r * blocks..<(r + 1) * blocks {
            let start = b * blockSize
            var blockAmax: Float = 0
            for i in start..<start + blockSize { blockAmax = max(blockAmax, abs(x[i])) }
            var bestError = Float.infinity
            var best: (byte: UInt8, divisor: Float) = (0, 1)
            for ratio in ClipSearch.symmetricRatios {
              let (byte, divisor) = blockScale(
                blockAmax: blockAmax * ratio, tensorScale: scale2, producer: producer, dtype: dtype)
              var error: Float = 0
              for i in start..<start + blockSize {
                let d = x[i] - FP4E2M1.decode(elementCode(x[i], divisor: divisor, producer: producer)) * divisor
                error += d * d
              }
              if error < bestError {
                bestError = error
                best = (byte, divisor)
              }
            }
            scaleOut.buffer[b] = best.byte
            for i in start..<start + blockSize {
              codeOut.buffer[i] = elementCode(x[i], divisor: best.divisor, producer: producer)
            }
          }
        }
      }
    }
    return Result(
      rowCount: rows, columnCount: cols, codes: codes, blockScales: scales, tensorScale: scale2, producer: producer)
  }
}
