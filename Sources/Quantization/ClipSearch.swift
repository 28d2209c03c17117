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

  /// Elements per parallel task at least: the search does several quantizations' work per element, so tasks
  /// are smaller than the plain fast paths'.
  static let minimumElementsPerTask = 4096
}

// MARK: int4 (compressed-tensors rule)

extension Int4GroupQuantizer {
  /// compressed-tensors int4 with `--search`: the clip ratio per group that minimises the squared error of
  /// compressed-tensors' own dequantization. `parallel: false` is the sequential reference.
  public static func quantizeWithClipSearch(
    _ weight: WeightMatrix, groupSize: Int, symmetry: Int4Symmetry,
    arithmetic: CompressedTensorsArithmetic = .weightDType, scaleDType: DType? = nil, parallel: Bool = true
  ) throws(FormatQuantizationError) -> Int4GroupResult {
    let storage = try validate(weight, groupSize: groupSize, scaleDType: scaleDType)
    let dtype = weight.dtype
    let candidates = ClipSearch.candidates(symmetric: symmetry == .symmetric)
    let (codes, scales, zeros) = GroupQuantDriver.quantizeGroups(
      weight, groupSize: groupSize, parallel: parallel, minimumElementsPerTask: ClipSearch.minimumElementsPerTask
    ) { x, start, codeOut -> (Float, Int8) in
      let (mn, mx) = GroupQuantScan.extrema(x, start: start, count: groupSize)
      var bestError = Float.infinity
      var best: (scale: Float, zeroPoint: Int8) = (1, 0)
      for (a, b) in candidates {
        let (scale, zp) = groupParameters(
          minimum: mn * a, maximum: mx * b, symmetry: symmetry, dtype: dtype, storage: storage)
        var error8 = SIMD8<Float>(repeating: 0)
        let zeroLevel = SIMD8<Float>(repeating: Float(Int(zp) + 8))
        for i in stride(from: start, to: start + groupSize, by: 8) {
          let x8 = GroupQuantRounding.load8(x, i)
          let code = codes8(x8, scale: scale, zeroPoint: zp, symmetry: symmetry, arithmetic: arithmetic, dtype: dtype)
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
      for i in stride(from: start, to: start + groupSize, by: 8) {
        let code = codes8(
          GroupQuantRounding.load8(x, i), scale: best.scale, zeroPoint: best.zeroPoint, symmetry: symmetry,
          arithmetic: arithmetic, dtype: dtype)
        GroupQuantRounding.store8(code, into: codeOut, at: i)
      }
      return best
    }
    return Int4GroupResult(
      rowCount: weight.rowCount, columnCount: weight.columnCount, groupSize: groupSize, codes: codes, scales: scales,
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
    let levels = Float((1 << bits) - 1)
    let dtype = weight.dtype
    let candidates = ClipSearch.candidates(symmetric: false)
    let (codes, scales, biases) = GroupQuantDriver.quantizeGroups(
      weight, groupSize: groupSize, parallel: parallel, minimumElementsPerTask: ClipSearch.minimumElementsPerTask
    ) { x, start, codeOut -> (Float, Float) in
      let (wMin, wMax) = GroupQuantScan.extrema(x, start: start, count: groupSize)
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
        codeOut.buffer[i] = UInt8(min(max(((x[i] - best.bias) / best.scale).rounded(.toNearestOrEven), 0), levels))
      }
      return (GroupQuantRounding.round(best.scale, to: dtype), GroupQuantRounding.round(best.bias, to: dtype))
    }
    return Result(
      rowCount: weight.rowCount, columnCount: weight.columnCount, groupSize: groupSize, bits: bits, codes: codes,
      scales: scales, biases: biases, scaleDType: dtype)
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
    let dtype = weight.dtype
    let (codes, scales) = GroupQuantDriver.quantizeGroups(
      weight, groupSize: blockSize, parallel: parallel, minimumElementsPerTask: ClipSearch.minimumElementsPerTask
    ) { x, start, codeOut -> UInt8 in
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
      func squaredError(exponent: UInt8) -> Float {
        var error: Float = 0
        for i in start..<start + blockSize {
          let d = x[i] - FP4E2M1.decode(code(x[i], exponent: exponent)) * E8M0.decode(exponent)
          error += d * d
        }
        return error
      }
      var bestExponent = base
      if base > 1 && base < 255
        && (rule == .gptOss
          || GroupQuantRounding.round(Float(sign: .plus, exponent: Int(base) - 128, significand: 1), to: dtype) != 0)
        && squaredError(exponent: base - 1) < squaredError(exponent: base)
      {
        bestExponent = base - 1
      }
      for i in start..<start + blockSize { codeOut.buffer[i] = code(x[i], exponent: bestExponent) }
      return bestExponent
    }
    return Result(rowCount: weight.rowCount, columnCount: weight.columnCount, codes: codes, scales: scales)
  }
}

// MARK: NVFP4

extension NVFP4 {
  /// NVFP4 with `--search`: per block, the block maximum shrunk by each ratio before the producer's block-scale
  /// formula; the per-tensor scale is unchanged. `parallel: false` is the sequential reference.
  public static func quantizeWithClipSearch(
    _ weight: WeightMatrix, producer: Producer, tensorAmax: Float? = nil, parallel: Bool = true
  ) throws(FormatQuantizationError) -> Result {
    try validate(weight)
    let dtype = weight.dtype
    var amax: Float = 0
    for v in weight.values { amax = max(amax, abs(v)) }
    amax = max(amax, tensorAmax ?? 0)
    let scale2 = tensorScale(amax: amax, producer: producer, dtype: dtype)
    let (codes, scales) = GroupQuantDriver.quantizeGroups(
      weight, groupSize: blockSize, parallel: parallel, minimumElementsPerTask: ClipSearch.minimumElementsPerTask
    ) { x, start, codeOut -> UInt8 in
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
      for i in start..<start + blockSize {
        codeOut.buffer[i] = elementCode(x[i], divisor: best.divisor, producer: producer)
      }
      return best.byte
    }
    return Result(
      rowCount: weight.rowCount, columnCount: weight.columnCount, codes: codes, blockScales: scales,
      tensorScale: scale2, producer: producer)
  }
}
