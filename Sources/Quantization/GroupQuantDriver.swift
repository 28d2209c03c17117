import TensorCore

/// The row-parallel loop shared by the group quantizers' fast paths (int4, GPTQ, MLX, MXFP4, NVFP4, clip search):
/// allocate the outputs, split rows across threads, visit every group. The per-group math stays in each format.
///
/// Groups run along the columns, so group `index = row · groups + g` starts at element `index · groupSize`.
/// The helpers are `@inline(__always)` so each format's group body is inlined and specialized in its caller
/// (no closure call or context per group in release builds).
enum GroupQuantDriver {
  /// Calls `body(x, groupIndex)` for every group of `weight`, rows in parallel (about
  /// `minimumElementsPerTask` elements per task at least) unless `parallel` is false.
  @inline(__always)
  static func forEachGroup(
    _ weight: WeightMatrix, groupSize: Int, parallel: Bool, minimumElementsPerTask: Int,
    _ body: @Sendable (_ x: UnsafeBufferPointer<Float>, _ groupIndex: Int) -> Void
  ) {
    let groups = weight.columnCount / groupSize
    let input = SharedRawBuffer(UnsafeRawBufferPointer(weight.values))
    // One chunk of all rows runs on the calling thread: the sequential mode.
    let minimumRows = parallel ? max(1, minimumElementsPerTask / weight.columnCount) : weight.rowCount
    Parallel.forEachChunk(count: weight.rowCount, minimumChunk: minimumRows) { rowRange in
      let x = input.bytes.assumingMemoryBound(to: Float.self)
      for groupIndex in rowRange.lowerBound * groups..<rowRange.upperBound * groups { body(x, groupIndex) }
    }
  }

  /// A quantization with one code per element and one scale per group: `group(x, start, codes)` writes the
  /// codes of the group starting at element `start` and returns its scale.
  @inline(__always)
  static func quantizeGroups<Scale: Numeric & Sendable>(
    _ weight: WeightMatrix, groupSize: Int, parallel: Bool = true, minimumElementsPerTask: Int = 16384,
    _ group: @Sendable (_ x: UnsafeBufferPointer<Float>, _ start: Int, _ codes: DisjointMutableBuffer<UInt8>) -> Scale
  ) -> (codes: [UInt8], scales: [Scale]) {
    let groupCount = weight.rowCount * (weight.columnCount / groupSize)
    var codes = [UInt8](repeating: 0, count: weight.rowCount * weight.columnCount)
    var scales = [Scale](repeating: .zero, count: groupCount)
    codes.withUnsafeMutableBufferPointer { codeBuffer in
      scales.withUnsafeMutableBufferPointer { scaleBuffer in
        let codeOut = DisjointMutableBuffer(codeBuffer)
        let scaleOut = DisjointMutableBuffer(scaleBuffer)
        forEachGroup(weight, groupSize: groupSize, parallel: parallel, minimumElementsPerTask: minimumElementsPerTask) {
          x, groupIndex in
          scaleOut.buffer[groupIndex] = group(x, groupIndex * groupSize, codeOut)
        }
      }
    }
    return (codes, scales)
  }

  /// As `quantizeGroups`, with a second per-group value (a zero point or a bias) returned next to the scale.
  @inline(__always)
  static func quantizeGroups<Scale: Numeric & Sendable, Parameter: Numeric & Sendable>(
    _ weight: WeightMatrix, groupSize: Int, parallel: Bool = true, minimumElementsPerTask: Int = 16384,
    _ group: @Sendable (_ x: UnsafeBufferPointer<Float>, _ start: Int, _ codes: DisjointMutableBuffer<UInt8>) -> (
      Scale, Parameter
    )
  ) -> (codes: [UInt8], scales: [Scale], parameters: [Parameter]) {
    let groupCount = weight.rowCount * (weight.columnCount / groupSize)
    var codes = [UInt8](repeating: 0, count: weight.rowCount * weight.columnCount)
    var scales = [Scale](repeating: .zero, count: groupCount)
    var parameters = [Parameter](repeating: .zero, count: groupCount)
    codes.withUnsafeMutableBufferPointer { codeBuffer in
      scales.withUnsafeMutableBufferPointer { scaleBuffer in
        parameters.withUnsafeMutableBufferPointer { parameterBuffer in
          let codeOut = DisjointMutableBuffer(codeBuffer)
          let scaleOut = DisjointMutableBuffer(scaleBuffer)
          let parameterOut = DisjointMutableBuffer(parameterBuffer)
          forEachGroup(weight, groupSize: groupSize, parallel: parallel, minimumElementsPerTask: minimumElementsPerTask)
          { x, groupIndex in
            (scaleOut.buffer[groupIndex], parameterOut.buffer[groupIndex]) = group(x, groupIndex * groupSize, codeOut)
          }
        }
      }
    }
    return (codes, scales, parameters)
  }
}

extension GroupQuantScan {
  /// The minimum and maximum of the `count` values from `start` (`count` a multiple of 8), eight lanes at a time.
  @inline(__always)
  static func extrema(_ x: UnsafeBufferPointer<Float>, start: Int, count: Int) -> (minimum: Float, maximum: Float) {
    var mn = SIMD8<Float>(repeating: .infinity)
    var mx = SIMD8<Float>(repeating: -.infinity)
    for i in stride(from: start, to: start + count, by: 8) {
      let v = GroupQuantRounding.load8(x, i)
      mn = GroupQuantRounding.minimum(mn, v)
      mx = GroupQuantRounding.maximum(mx, v)
    }
    return (mn.min(), mx.max())
  }
}
