import Checkpoint
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import Testing
@testable import Pipeline

/// Writes a one-file checkpoint of BF16 expert-like weights with outlier columns; returns its directory.
private func makeCheckpoint(_ name: String, shapes: [[Int]]) throws -> String {
  let directory = try scratch(name)
  try FileSystem.createDirectory(directory)
  let tensors = shapes.enumerated().map { index, shape in
    PlannedTensor(name: "model.layers.1.mlp.experts.\(index).up_proj.weight", dtype: .bfloat16, shape: shape)
  }
  let writer = try SafeTensorsFileWriter(path: FileSystem.join(directory, "model.safetensors"), layout: SafeTensorsLayout(tensors: tensors))
  var state: UInt64 = 0x9E37_79B9_7F4A_7C15
  for tensor in tensors {
    let (rows, columns) = (tensor.shape[0], tensor.shape[1])
    var bits = [UInt16](repeating: 0, count: rows * columns)
    for row in 0..<rows {
      for column in 0..<columns {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        // Roughly uniform in ±0.02, x20 on a few input columns, exact zeros now and then.
        var value = (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.04
        if column % 97 == 5 { value *= 20 }
        if (state >> 20) % 53 == 0 { value = 0 }
        bits[row * columns + column] = BFloat16.bits(from: value)
      }
    }
    try bits.withUnsafeBytes { try writer.write(tensorNamed: tensor.name, bytes: $0) }
  }
  try writer.commit()
  return directory
}

/// Converts with explicit chunking and worker count; returns the reopened output and the report.
private func run(
  _ input: String, _ target: ConversionTarget, into name: String, chunkElements: Int, workers: Int
) throws -> (Checkpoint, ConversionReport) {
  let checkpoint = try Checkpoint.open(input)
  let output = try scratch(name)
  let plan = try ConversionPlan(checkpoint: checkpoint, target: target, selection: TensorSelection(includes: [Glob("*")]))
  let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
  defer { lock.release() }
  let runner = ConversionRunner(plan: plan, checkpoint: checkpoint, output: output, chunkElements: chunkElements, workerCount: workers)
  let report = try runner.run(resume: false, commandLine: ["test"]) { _ in }
  return (try Checkpoint.open(output), report)
}

private func sameTensors(_ a: Checkpoint, _ b: Checkpoint) throws -> Bool {
  guard Set(a.tensorNames) == Set(b.tensorNames) else { return false }
  for name in a.tensorNames {
    let x = try a.tensor(name)
    let y = try b.tensor(name)
    if x.dtype != y.dtype || x.shape != y.shape || x.copyBytes() != y.copyBytes() { return false }
  }
  return true
}

@Suite("Conversion runner: chunks, workers, statistics, digests") struct ConversionRunnerTests {
  // 300 rows: two full 128-row blocks and a partial one; 200 columns: a partial block column.
  static let shapes = [[300, 200], [130, 64], [7, 260]]

  @Test("many small chunks on several workers write the same bytes as one chunk per tensor on one worker")
  func chunkingIsInvisible() throws {
    let input = try makeCheckpoint("runner-in", shapes: Self.shapes)
    let targets: [(String, ConversionTarget)] = [
      ("block", .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128)))),
      ("channel", .fp8(FP8Layout(granularity: .channel))),
      ("tensor", .fp8(FP8Layout(granularity: .tensor))),
      ("f16", .cast(.float16)),
    ]
    for (label, target) in targets {
      let (whole, wholeReport) = try run(input, target, into: "runner-\(label)-whole", chunkElements: 1 << 20, workers: 1)
      let (chunked, chunkedReport) = try run(input, target, into: "runner-\(label)-chunked", chunkElements: 300, workers: 3)
      #expect(try sameTensors(whole, chunked), "\(label): chunked output differs")
      #expect(wholeReport.tensors.map(\.name) == chunkedReport.tensors.map(\.name))
      for (a, b) in zip(wholeReport.tensors, chunkedReport.tensors) {
        #expect(a.maxAbsoluteError == b.maxAbsoluteError, "\(label) \(a.name)")
        #expect(abs(a.snrDecibels - b.snrDecibels) < 1e-4, "\(label) \(a.name): \(a.snrDecibels) vs \(b.snrDecibels)")
      }
    }
    // FP8 block -> BF16, chunked along 128-row blocks.
    let (fp8, _) = try run(input, targets[0].1, into: "runner-fp8", chunkElements: 1 << 20, workers: 1)
    let (whole, _) = try run(fp8.directory, .cast(.bfloat16), into: "runner-bf16-whole", chunkElements: 1 << 20, workers: 1)
    let (chunked, report) = try run(fp8.directory, .cast(.bfloat16), into: "runner-bf16-chunked", chunkElements: 300, workers: 3)
    #expect(try sameTensors(whole, chunked))
    #expect(report.tensors.allSatisfy { $0.snrDecibels > 40 && $0.maxAbsoluteError > 0 })
  }

  @Test("per-tensor scaling in row chunks equals quantizing the whole tensor at once")
  func tensorScaleMatchesKernel() throws {
    let input = try makeCheckpoint("runner-tensor-in", shapes: [[300, 200]])
    let (output, _) = try run(input, .fp8(FP8Layout(granularity: .tensor)), into: "runner-tensor-out", chunkElements: 256, workers: 2)
    let source = try Checkpoint.open(input).tensor("model.layers.1.mlp.experts.0.up_proj.weight")
    let layout = try FP8BlockLayout(rows: 300, columns: 200, scheme: .tensor)
    var codes = [UInt8](repeating: 0, count: layout.elementCount)
    var scales = [Float](repeating: 0, count: 1)
    try codes.withUnsafeMutableBytes { weights in
      try scales.withUnsafeMutableBufferPointer { scales in
        try BlockFP8.quantize(
          source.bytes, dtype: .bfloat16, layout: layout, rule: FP8ScaleRule(storageDType: .bfloat16), weights: weights, scales: scales)
      }
    }
    #expect(try output.tensor("model.layers.1.mlp.experts.0.up_proj.weight").copyBytes() == codes)
    #expect(try output.tensor("model.layers.1.mlp.experts.0.up_proj.weight_scale").copyElements(as: UInt16.self)
      == [BFloat16.bits(from: scales[0])])
  }

  @Test("the SIMD error pass agrees with the scalar ErrorStatistics.reference")
  func errorStatisticsMatchScalar() throws {
    var state: UInt32 = 12345
    var reference = [Float]()
    var approximation = [Float]()
    for i in 0..<5003 {
      state = state &* 1_664_525 &+ 1_013_904_223
      let x = (Float(state >> 8) / Float(1 << 24) - 0.5) * Float(1 + i % 7)
      reference.append(x)
      approximation.append(BFloat16.float(fromBits: BFloat16.bits(from: x)))
    }
    let bf16 = approximation.map { BFloat16.bits(from: $0) }
    let scalar = reference.withUnsafeBufferPointer { r in
      approximation.withUnsafeBufferPointer { a in ErrorStatistics.reference(reference: r, candidate: a) }
    }
    for count in [0, 1, 7, 8, 9, 1024, 1031, 5003] {
      let expected = reference.withUnsafeBufferPointer { r in
        approximation.withUnsafeBufferPointer { a in
          ErrorStatistics.reference(reference: UnsafeBufferPointer(rebasing: r[0..<count]), candidate: UnsafeBufferPointer(rebasing: a[0..<count]))
        }
      }
      let f32 = reference.withUnsafeBytes { r in
        approximation.withUnsafeBytes { a in
          var measured = ErrorStatistics()
          measured.add(reference: r, .float32, candidate: a, .float32, count: count)
          return measured
        }
      }
      let mixed = reference.withUnsafeBytes { r in
        bf16.withUnsafeBytes { a in
          var measured = ErrorStatistics()
          measured.add(reference: r, .float32, candidate: a, .bfloat16, count: count)
          return measured
        }
      }
      for measured in [f32, mixed] {
        #expect(measured.elementCount == expected.elementCount)
        #expect(measured.maxAbsoluteError == expected.maxAbsoluteError)
        #expect(abs(measured.signalEnergy - expected.signalEnergy) <= 1e-5 * expected.signalEnergy)
        #expect(abs(measured.errorEnergy - expected.errorEnergy) <= 1e-5 * expected.errorEnergy)
      }
    }
  }

  @Test("file digests: libcrypto (when present) and the portable SHA-256 agree")
  func digestsAgree() throws {
    let directory = try scratch("digest")
    try FileSystem.createDirectory(directory)
    for size in [0, 1, 63, 64, 65, 1000, (8 << 20) + 17] {
      let path = FileSystem.join(directory, "f\(size)")
      let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
      try FileSystem.writeFileAtomically(bytes, to: path)
      let fast = try FileDigest.sha256(of: path)
      let portable = try FileDigest.sha256(of: path, forcePortable: true)
      #expect(fast == portable, "size \(size)")
      #expect(portable == SHA256.hex(of: bytes))
    }
  }

  @Test("a NaN in a later chunk is reported at its row in the whole tensor")
  func nonFiniteRowIsAbsolute() throws {
    let directory = try scratch("runner-nan")
    try FileSystem.createDirectory(directory)
    let tensor = PlannedTensor(name: "model.layers.1.mlp.experts.0.up_proj.weight", dtype: .bfloat16, shape: [300, 16])
    let writer = try SafeTensorsFileWriter(path: FileSystem.join(directory, "model.safetensors"), layout: SafeTensorsLayout(tensors: [tensor]))
    var bits = [UInt16](repeating: BFloat16.bits(from: 0.01), count: 300 * 16)
    bits[261 * 16 + 3] = BFloat16.quietNaNBits
    try bits.withUnsafeBytes { try writer.write(tensorNamed: tensor.name, bytes: $0) }
    try writer.commit()
    do {
      _ = try run(directory, .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), into: "runner-nan-out", chunkElements: 16, workers: 2)
      Issue.record("a NaN weight was quantized")
    } catch let error as ConversionError {
      #expect("\(error)".contains("row 261"), "\(error)")
    }
  }

  @Test("the lane E4M3 decoder matches the decode table for all 256 codes")
  func e4m3LanesMatchTable() {
    for base in stride(from: 0, to: 256, by: 8) {
      let codes = SIMD8<UInt8>((0..<8).map { UInt8(base + $0) })
      let lanes = E4M3Lanes.decode(codes)
      for lane in 0..<8 {
        let expected = Float8E4M3FN.float(fromBits: codes[lane])
        #expect(lanes[lane].bitPattern == expected.bitPattern, "code \(codes[lane])")
      }
    }
  }

  @Test("fused FP8 -> BF16 writes the kernel's bytes and the scalar twin's statistics")
  func fusedDequantizeMatchesKernel() throws {
    // 130 x 200: partial block row and column; every code (NaN and subnormals included) appears.
    let layout = try FP8BlockLayout(rows: 130, columns: 200, scheme: .block(rows: 128, columns: 128))
    let codes = (0..<layout.elementCount).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ $0 >> 8) }
    let scales: [Float] = [0.003, 1.7e-5, 2.5, 1e-30]
    var kernel = [UInt8](repeating: 0, count: layout.elementCount * 2)
    var fused = kernel
    var scalar = kernel
    try codes.withUnsafeBytes { c in
      try scales.withUnsafeBufferPointer { s in
        try kernel.withUnsafeMutableBytes { try BlockFP8.dequantize(c, scales: s, layout: layout, to: .bfloat16, into: $0) }
        // With NaN codes the statistics are NaN (the lane maximum keeps NaN, the scalar one skips it).
        let fast = fused.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16(c, scales: s, layout: layout, into: $0) }
        let slow = scalar.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16Reference(c, scales: s, layout: layout, into: $0) }
        #expect(fast.elementCount == slow.elementCount)
      }
    }
    #expect(fused == kernel)
    #expect(scalar == kernel)
    // Statistics on finite codes only (NaN codes make the energies NaN in both).
    let finite = codes.map { $0 & 0x7F == 0x7F ? 0 : $0 }
    try finite.withUnsafeBytes { c in
      try scales.withUnsafeBufferPointer { s in
        var out = [UInt8](repeating: 0, count: layout.elementCount * 2)
        let fast = out.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16(c, scales: s, layout: layout, into: $0) }
        let slow = out.withUnsafeMutableBytes { FusedFP8.dequantizeToBF16Reference(c, scales: s, layout: layout, into: $0) }
        #expect(fast.maxAbsoluteError == slow.maxAbsoluteError)
        #expect(abs(fast.signalEnergy - slow.signalEnergy) <= 1e-5 * slow.signalEnergy)
        #expect(abs(fast.errorEnergy - slow.errorEnergy) <= 1e-5 * slow.errorEnergy)
      }
    }
  }

  @Test("fused quantization error equals dequantize-then-compare")
  func fusedQuantizationError() throws {
    let layout = try FP8BlockLayout(rows: 130, columns: 200, scheme: .block(rows: 128, columns: 128))
    var state: UInt32 = 7
    let source: [UInt16] = (0..<layout.elementCount).map { _ in
      state = state &* 1_664_525 &+ 1_013_904_223
      return BFloat16.bits(from: (Float(state >> 8) / Float(1 << 24) - 0.5) * 0.1)
    }
    var codes = [UInt8](repeating: 0, count: layout.elementCount)
    var scales = [Float](repeating: 0, count: layout.scaleCount)
    var back = [Float](repeating: 0, count: layout.elementCount)
    try source.withUnsafeBytes { src in
      try codes.withUnsafeMutableBytes { c in
        try scales.withUnsafeMutableBufferPointer { try BlockFP8.quantize(src, dtype: .bfloat16, layout: layout, weights: c, scales: $0) }
      }
    }
    try codes.withUnsafeBytes { c in
      try scales.withUnsafeBufferPointer { s in
        try back.withUnsafeMutableBytes { try BlockFP8.dequantize(c, scales: s, layout: layout, to: .float32, into: $0) }
      }
    }
    let reference = source.map(BFloat16.float(fromBits:))
    let expected = reference.withUnsafeBufferPointer { r in back.withUnsafeBufferPointer { ErrorStatistics.reference(reference: r, candidate: $0) } }
    let fused = source.withUnsafeBytes { src in
      codes.withUnsafeBytes { c in
        scales.withUnsafeBufferPointer { FusedFP8.quantizationError(source: src, .bfloat16, codes: c, scales: $0, layout: layout) }
      }
    }
    #expect(fused.elementCount == expected.elementCount)
    #expect(fused.maxAbsoluteError == expected.maxAbsoluteError)
    #expect(abs(fused.signalEnergy - expected.signalEnergy) <= 1e-5 * expected.signalEnergy)
    #expect(abs(fused.errorEnergy - expected.errorEnergy) <= 1e-5 * expected.errorEnergy)
  }

  @Test("non-finite scans count NaN/inf values and E4M3 NaN codes, with the first index")
  func nonFiniteScans() {
    for position in [0, 5, 8, 13, 16, 20] {
      var values = [Float](repeating: 1, count: 21)
      values[position] = position % 2 == 0 ? .nan : -.infinity
      values[20] = .infinity
      let scan = values.withUnsafeBufferPointer { NonFinite.scan($0) }
      #expect(scan.count == (position == 20 ? 1 : 2) && scan.first == position, "position \(position)")
      var codes = [UInt8](repeating: 0x7E, count: 21)
      codes[position] = position % 2 == 0 ? 0x7F : 0xFF
      let codeScan = codes.withUnsafeBytes { NonFinite.scanE4M3($0) }
      #expect(codeScan.count == 1 && codeScan.first == position, "code position \(position)")
    }
    #expect([Float](repeating: 3e38, count: 9).withUnsafeBufferPointer { NonFinite.scan($0) }.count == 0)
    #expect((0..<256).map { UInt8($0) }.withUnsafeBytes { NonFinite.scanE4M3($0) }.count == 2)
  }
}
