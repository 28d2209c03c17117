import Checkpoint
import GGML
import GGUF
import GGUFModel
import JobParts
import SafeTensors
import SystemIO
import TensorCore
import Testing
import TestSupport
import WeightFormats
@testable import Pipeline

@Suite("GGUF conversion") struct GGUFConversionTests {
  static func convert(_ sample: String, to output: String, _ configure: (inout GGUFConversionPlan.Options) -> Void = { _ in }) throws
    -> GGUFConversionPlan
  {
    let checkpoint = try Checkpoint.open(sample)
    var options = GGUFConversionPlan.Options(preset: .mostlyQ4_K_M)
    configure(&options)
    let plan = try GGUFConversionPlan(checkpoint: checkpoint, output: output, options: options)
    let runner = try GGUFConversionRunner(plan: plan, checkpoint: checkpoint, chunkElements: 1 << 15, workerCount: 3)
    _ = try runner.run(resume: false) { _ in }
    return plan
  }

  /// The ggml encoding of Hugging Face weight `name` rows, as the kernels write it.
  static func encoded(_ name: String, in checkpoint: Checkpoint, type: GGMLType) throws -> [UInt8] {
    let group = try #require(WeightGrouping.groups(of: checkpoint.entries).first { WeightDecoding.logicalName(of: $0) == name })
    let decoded = try WeightDecoding.decode(group: group, in: checkpoint)
    let kernels = try #require(GGMLKernels.forType(type))
    let rowBytes = try #require(type.rowByteCount(elementCount: decoded.geometry.columns))
    var out = [UInt8](repeating: 0, count: decoded.geometry.rows * rowBytes)
    try decoded.values.withUnsafeBufferPointer { values in
      try out.withUnsafeMutableBytes { try kernels.quantize(values, rowLength: decoded.geometry.columns, into: $0) }
    }
    return out
  }

  @Test("FP8 sample to Q4_K_M: every tensor planned is written; plain and stacked-expert tensors hold the kernels' blocks of the dequantized source")
  func fp8ToQ4KM() throws {
    let sample = TestPaths.sample("tiny-deepseek-v3-fp8")
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-fp8-q4km"), "gguf-fp8-q4km.gguf")
    let plan = try Self.convert(sample, to: output)
    let file = try GGUFFile(path: output)
    #expect(file.tensors.map(\.name) == plan.tensors.map(\.info.name))
    #expect(file.metadata["deepseek2.expert_gating_func"] == .uint32(2))
    #expect(file.metadata["general.file_type"] == .uint32(LlamaFileType.mostlyQ4_K_M.rawValue))
    #expect(file.metadata["tokenizer.ggml.model"] == .string("gpt2"))
    #expect(file.metadata["deepseek2.nextn_predict_layers"] == .uint32(1))
    let checkpoint = try Checkpoint.open(sample)
    let qb = try #require(file.tensors.firstIndex { $0.name == "blk.1.attn_q_b.weight" })
    #expect(Array(file.bytes(ofTensor: qb)) == (try Self.encoded("model.layers.1.self_attn.q_b_proj.weight", in: checkpoint, type: file.tensors[qb].type)))
    let up = try #require(file.tensors.firstIndex { $0.name == "blk.2.ffn_up_exps.weight" })
    let expert = try Self.encoded("model.layers.2.mlp.experts.5.up_proj.weight", in: checkpoint, type: file.tensors[up].type)
    let slab = Array(file.bytes(ofTensor: up))[(5 * expert.count)..<(6 * expert.count)]
    #expect(Array(slab) == expert)
    // Norms and the router bias stay F32.
    #expect(file.tensors.first { $0.name == "blk.2.exp_probs_b.bias" }?.type == .f32)
    #expect(file.tensors.first { $0.name == "blk.0.attn_norm.weight" }?.type == .f32)
  }

  @Test("--drop-mtp leaves out the nextn block and its key")
  func dropMTP() throws {
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-nomtp"), "gguf-nomtp.gguf")
    _ = try Self.convert(TestPaths.sample("tiny-deepseek-v3"), to: output) { $0.keepMTP = false; $0.preset = .mostlyQ8_0 }
    let file = try GGUFFile(path: output)
    #expect(file.metadata["deepseek2.nextn_predict_layers"] == nil)
    #expect(!file.tensors.contains { $0.name.contains("nextn") })
  }

  @Test("a split set holds the single file's tensors byte for byte; --resume after a lost shard rewrites it identically")
  func splitAndResume() throws {
    let sample = TestPaths.sample("tiny-deepseek-v3")
    let single = FileSystem.join(try TestPaths.scratchDirectory("gguf-single"), "gguf-single.gguf")
    _ = try Self.convert(sample, to: single) { $0.preset = .mostlyQ8_0 }
    let directory = try TestPaths.scratchDirectory("gguf-split")
    let output = FileSystem.join(directory, "model.gguf")
    let plan = try Self.convert(sample, to: output) { $0.preset = .mostlyQ8_0; $0.maxShardByteCount = 1 << 20 }
    #expect(plan.paths.count > 2)
    #expect(plan.paths[0].hasSuffix("model-00001-of-0000\(plan.paths.count).gguf"))
    let reference = try GGUFFile(path: single)
    let files = try GGUFFile.openSet(plan.paths[1])
    #expect(files.flatMap { $0.tensors.map(\.name) } == reference.tensors.map(\.name))
    for file in files {
      for (index, tensor) in file.tensors.enumerated() {
        #expect(Array(file.bytes(ofTensor: index)) == Array(try reference.bytes(ofTensor: tensor.name)), "\(tensor.name)")
      }
    }
    let before = try plan.paths.map { try FileDigest.sha256(of: $0) }
    // An interrupted run: the journal says every shard but the last is done, and the last is gone.
    let checkpoint = try Checkpoint.open(sample)
    let runner = try GGUFConversionRunner(plan: plan, checkpoint: checkpoint)
    let journal = ResumeJournal(
      path: GGUFConversionRunner.journalPath(for: plan.paths[0]), planFingerprint: runner.fingerprint(), inputStamps: [], commandLine: [])
    for path in plan.paths.dropLast() {
      journal.record(PartOutput(path: FileSystem.split(path).name, byteCount: try FileSystem.byteCount(of: path), sha256: try FileDigest.sha256(of: path)))
    }
    try FileSystem.remove(plan.paths.last!)
    let report = try runner.run(resume: true) { _ in }
    #expect(report.filesResumed.count == plan.paths.count - 1 && report.filesWritten == [plan.paths.last!])
    #expect(try plan.paths.map { try FileDigest.sha256(of: $0) } == before)
    #expect(!FileSystem.exists(GGUFConversionRunner.journalPath(for: plan.paths[0])))
  }

  @Test("a NaN in a source weight fails the conversion naming the tensor; no output file is left")
  func nanSource() throws {
    let source = TestPaths.sample("tiny-deepseek-v3")
    let copy = try TestPaths.scratchDirectory("gguf-nan-input")
    for name in try FileSystem.contents(of: source) { try FileSystem.copyFile(FileSystem.join(source, name), to: FileSystem.join(copy, name)) }
    let target = "model.layers.2.mlp.experts.3.down_proj.weight"
    let opened = try Checkpoint.open(copy)
    let f = try #require(opened.files.firstIndex { $0.entries.contains { $0.name == target } })
    let entry = try #require(opened.files[f].entries.first { $0.name == target })
    let offset = opened.files[f].header.dataStart + entry.dataOffsets.lowerBound + 2 * 77
    let descriptor = try FileDescriptor.open(opened.files[f].path, .readWrite)
    try [UInt8(0xC0), 0x7F].withUnsafeBytes { try descriptor.write($0, at: offset) }
    descriptor.close()
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-nan"), "gguf-nan.gguf")
    do {
      _ = try Self.convert(copy, to: output) { $0.preset = .mostlyQ8_0 }
      Issue.record("a NaN source must fail the conversion")
    } catch {
      #expect("\(error)".contains(target) && "\(error)".contains("nan"), "\(error)")
    }
    let (directory, name) = FileSystem.split(output)
    #expect(!FileSystem.exists(output))
    #expect(!(try FileSystem.contents(of: directory)).contains { $0.contains(name) && $0.hasSuffix(".smelt-tmp") })
  }
}
