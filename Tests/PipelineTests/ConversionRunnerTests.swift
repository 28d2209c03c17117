import Checkpoint
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import Testing
import WeightFormats
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
}
