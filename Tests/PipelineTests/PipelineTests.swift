#if canImport(Glibc)
  import Glibc
#endif
import Checkpoint
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import TestSupport
import Testing
import WeightFormats
@testable import Pipeline

func scratch(_ name: String) throws -> String { try TestPaths.scratchPath(name) }

/// Converts `input` to `target` into a fresh directory and reopens the result.
func convert(_ input: String, _ target: ConversionTarget, into name: String, maxShard: Int = OutputSharding.defaultMaxShardByteCount) throws -> Checkpoint {
  let checkpoint = try Checkpoint.open(input)
  let output = try scratch(name)
  let plan = try ConversionPlan(checkpoint: checkpoint, target: target, maxShardByteCount: maxShard)
  let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
  defer { lock.release() }
  _ = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
  return try Checkpoint.open(output)
}

@Suite("Conversion round trips on the samples") struct ConversionRoundTripTests {
  let fp8Sample = TestPaths.sample("tiny-deepseek-v3-fp8")
  let bf16Sample = TestPaths.sample("tiny-deepseek-v3")

  @Test("FP8 sample -> F32 -> FP8 block reproduces the sample's bytes and scales exactly")
  func fp8RoundTrip() throws {
    let f32 = try convert(fp8Sample, .cast(.float32), into: "rt-f32")
    #expect(f32.config?.quantizationConfig == nil)
    let back = try convert(f32.directory, .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), into: "rt-fp8")
    let original = try Checkpoint.open(fp8Sample)
    let sameNames = Set(back.tensorNames) == Set(original.tensorNames)
    #expect(sameNames)
    var quantized = 0
    for name in original.tensorNames {
      let a = try original.tensor(name)
      let b = try back.tensor(name)
      #expect(a.shape == b.shape, "\(name)")
      if a.dtype == .float8E4M3FN || name.hasSuffix("weight_scale_inv") {
        quantized += 1
        // Compared outside #expect: its diff of large arrays is quadratic.
        let same = a.dtype == b.dtype && a.copyBytes() == b.copyBytes()
        #expect(same, "\(name) differs after the round trip")
      } else {
        // Unquantized tensors went BF16 -> F32 (exact) and stay F32.
        var values = [Float](repeating: 0, count: a.entry.elementCount)
        try values.withUnsafeMutableBufferPointer { try ElementCodec.decode(a.bytes, dtype: a.dtype, into: $0) }
        let same = values == (try b.copyElements(as: Float.self))
        #expect(same, "\(name) changed value")
      }
    }
    #expect(quantized == 464)
    #expect(back.config?.quantizationConfig?.weightBlockSize == [128, 128])
    #expect(back.config?.quantizationConfig?.quantMethod == "fp8")
  }

  @Test("FP8 -> BF16 equals the F32 dequantization rounded to BF16 (DeepSeek's weight_dequant)")
  func bf16MatchesDequant() throws {
    let bf16 = try convert(fp8Sample, .cast(.bfloat16), into: "deq-bf16")
    let original = try Checkpoint.open(fp8Sample)
    let name = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"  // 160 rows: a partial edge block
    let weight = try original.tensor(name)
    let scales = try original.tensor(name + "_scale_inv").copyElements(as: Float.self)
    let codes = weight.copyBytes()
    let columns = weight.shape[1]
    let out = try bf16.tensor(name).copyElements(as: UInt16.self)
    for row in 0..<weight.shape[0] {
      for column in stride(from: 0, to: columns, by: 7) {
        let scale = scales[(row / 128) * ((columns + 127) / 128) + column / 128]
        let expected = BFloat16.bits(from: Float8E4M3FN.float(fromBits: codes[row * columns + column]) * scale)
        #expect(out[row * columns + column] == expected)
      }
    }
  }

  @Test("BF16 -> FP8 block -> F32 keeps 30-33 dB on the sample's weights")
  func quantizationSNR() throws {
    let fp8 = try convert(bf16Sample, .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), into: "q-fp8")
    let back = try convert(fp8.directory, .cast(.float32), into: "q-f32")
    let original = try Checkpoint.open(bf16Sample)
    let name = "model.layers.2.mlp.experts.3.up_proj.weight"
    var signal: Double = 0
    var noise: Double = 0
    let reference = try original.tensor(name).copyElements(as: UInt16.self).map(BFloat16.float(fromBits:))
    let approximation = try back.tensor(name).copyElements(as: Float.self)
    for (x, y) in zip(reference, approximation) {
      signal += Double(x * x)
      noise += Double((x - y) * (x - y))
    }
    let snr = 10 * log10(signal / noise)
    #expect(snr > 28 && snr < 35, "SNR \(snr) dB")
  }

  @Test("a weight without its scale is an error, not a silent copy")
  func missingScale() throws {
    let input = try scratch("missing-scale-in")
    try FileSystem.createDirectory(input)
    let layout = try SafeTensorsLayout(tensors: [
      PlannedTensor(name: "model.layers.0.mlp.up_proj.weight_scale_inv", dtype: .float32, shape: [1, 1]),
    ])
    let writer = try SafeTensorsFileWriter(path: input + "/model.safetensors", layout: layout)
    try writer.write(tensorNamed: "model.layers.0.mlp.up_proj.weight_scale_inv", bytes: [0, 0, 128, 63])
    try writer.commit()
    #expect(throws: ConversionError.self) {
      _ = try ConversionPlan(checkpoint: try Checkpoint.open(input), target: .cast(.bfloat16))
    }
  }

  @Test("a misshaped scale is an error naming the tensor")
  func misshapedScale() throws {
    let input = try scratch("bad-scale-in")
    try FileSystem.createDirectory(input)
    let layout = try SafeTensorsLayout(tensors: [
      PlannedTensor(name: "model.layers.0.mlp.up_proj.weight", dtype: .float8E4M3FN, shape: [130, 4]),
      PlannedTensor(name: "model.layers.0.mlp.up_proj.weight_scale_inv", dtype: .float32, shape: [1, 1]),
    ])
    let writer = try SafeTensorsFileWriter(path: input + "/model.safetensors", layout: layout)
    try writer.write(tensorNamed: "model.layers.0.mlp.up_proj.weight", bytes: [UInt8](repeating: 0x38, count: 520))
    try writer.write(tensorNamed: "model.layers.0.mlp.up_proj.weight_scale_inv", bytes: [0, 0, 128, 63])
    try writer.commit()
    do {
      _ = try convert(input, .cast(.bfloat16), into: "bad-scale-out")
      Issue.record("expected an error")
    } catch {
      #expect("\(error)".contains("weight_scale_inv"))
    }
  }

  @Test("output is split by --max-shard-size with an index and total_size")
  func sharding() throws {
    let out = try convert(fp8Sample, .cast(.bfloat16), into: "sharded", maxShard: 2_000_000)
    #expect(out.files.count > 3)
    #expect(out.index?.totalByteCount == out.tensorByteCount)
    #expect(out.warnings.isEmpty)
    #expect(FileSystem.exists(out.directory + "/tokenizer.json"))
    #expect(FileSystem.exists(out.directory + "/" + OutputManifest.fileName))
  }

  @Test("refuses an output inside the input, and a non-empty output without --force")
  func outputRules() throws {
    #expect(throws: OutputDirectory.Refusal.self) {
      _ = try OutputDirectory.prepare(fp8Sample + "/out", input: fp8Sample, force: true, resume: false)
    }
    let busy = try scratch("busy")
    try FileSystem.createDirectory(busy)
    try FileSystem.writeFileAtomically([1], to: busy + "/x")
    #expect(throws: OutputDirectory.Refusal.self) {
      _ = try OutputDirectory.prepare(busy, input: fp8Sample, force: false, resume: false)
    }
  }
}
