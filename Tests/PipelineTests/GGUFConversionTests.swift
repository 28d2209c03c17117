import CMath
import Checkpoint
import GGML
import GGUF
import GGUFModel
import JSON
import JobParts
import Quantization
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
    let runner = GGUFConversionRunner(plan: plan, checkpoint: checkpoint, chunkElements: 1 << 15, workerCount: 3)
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

  /// A copy of sample `sample` (in scratch directory `name`) with `bytes` written over tensor `tensor`'s data
  /// at `byteOffset`: a hostile or unusual value in an otherwise valid checkpoint.
  static func patchedCopy(of sample: String, into name: String, tensor: String, byteOffset: Int, bytes: [UInt8]) throws -> String {
    let source = TestPaths.sample(sample)
    let copy = try TestPaths.scratchDirectory(name)
    for file in try FileSystem.contents(of: source) { try FileSystem.copyFile(FileSystem.join(source, file), to: FileSystem.join(copy, file)) }
    let opened = try Checkpoint.open(copy)
    let f = try #require(opened.files.firstIndex { $0.entries.contains { $0.name == tensor } })
    let entry = try #require(opened.files[f].entries.first { $0.name == tensor })
    let descriptor = try FileDescriptor.open(opened.files[f].path, .readWrite)
    defer { descriptor.close() }
    try bytes.withUnsafeBytes { try descriptor.write($0, at: opened.files[f].header.dataStart + entry.dataOffsets.lowerBound + byteOffset) }
    return copy
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
    let runner = GGUFConversionRunner(plan: plan, checkpoint: checkpoint)
    let journal = ResumeJournal(
      path: GGUFConversionRunner.journalPath(for: plan.paths[0]), planFingerprint: runner.fingerprint(),
      inputStamps: checkpoint.inputStamps(), commandLine: [])
    for path in plan.paths.dropLast() {
      journal.record(
        PartOutput(path: FileSystem.split(path).name, byteCount: try FileSystem.byteCount(of: path), sha256: try FileDigest.sha256(of: path)))
    }
    try FileSystem.remove(plan.paths.last!)
    let report = try runner.run(resume: true) { _ in }
    #expect(report.filesResumed.count == plan.paths.count - 1 && report.filesWritten == [plan.paths.last!])
    #expect(try plan.paths.map { try FileDigest.sha256(of: $0) } == before)
    #expect(!FileSystem.exists(GGUFConversionRunner.journalPath(for: plan.paths[0])))
  }

  @Test("a NaN in a source weight fails the conversion naming the tensor; no output file is left")
  func nanSource() throws {
    let target = "model.layers.2.mlp.experts.3.down_proj.weight"
    let copy = try Self.patchedCopy(
      of: "tiny-deepseek-v3", into: "gguf-nan-input", tensor: target, byteOffset: 2 * 77, bytes: [0xC0, 0x7F])
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

  /// `convert` with the runner's report.
  static func convertReporting(_ sample: String, to output: String, preset: LlamaFileType) throws
    -> (GGUFConversionPlan, GGUFConversionReport)
  {
    let checkpoint = try Checkpoint.open(sample)
    let plan = try GGUFConversionPlan(checkpoint: checkpoint, output: output, options: GGUFConversionPlan.Options(preset: preset))
    let runner = GGUFConversionRunner(plan: plan, checkpoint: checkpoint, chunkElements: 1 << 12, workerCount: 3)
    return (plan, try runner.run(resume: false) { _ in })
  }

  @Test("Kimi K2.5 to F32: the int4 experts hold the exact product (code − 8) · scale, as llama.cpp's converter dequantizes them, not compressed-tensors' BF16 rounding of it")
  func kimiInt4ExpertsDecodeExactly() throws {
    let sample = TestPaths.sample("tiny-kimi-k2.5")
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-kimi-f32"), "kimi-f32.gguf")
    _ = try Self.convert(sample, to: output) { $0.preset = .allF32 }
    let file = try GGUFFile(path: output)
    let checkpoint = try Checkpoint.open(sample)
    let up = try #require(file.tensors.firstIndex { $0.name == "blk.1.ffn_up_exps.weight" })
    let values = Array(file.bytes(ofTensor: up)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    let perExpert = values.count / 4
    var roundedDiffers = 0
    for expert in 0..<4 {
      let group = try #require(WeightGrouping.groups(of: checkpoint.entries).first {
        $0.modulePath == "language_model.model.layers.1.mlp.experts.\(expert).up_proj"
      })
      let int4 = try Int4PackQuantized.symmetricGroups(WeightDecoding.packedTensors(of: group, in: checkpoint), groupSize: 32)
      let registry = try WeightDecoding.decode(group: group, in: checkpoint).values
      for i in 0..<perExpert {
        let exact = Float(Int(int4.offsetCodes[i]) - 8) * int4.scales[i / 32]
        #expect(values[expert * perExpert + i].bitPattern == exact.bitPattern)
        if registry[i].bitPattern != exact.bitPattern { roundedDiffers += 1 }
      }
    }
    // The registry's decoder (compressed-tensors' rule) rounds some of these products to BF16: the two differ.
    #expect(roundedDiffers > 0)
  }

  @Test("Kimi K2.5 to Q4_0: the wrapper's language model maps to deepseek2 (vision tower left out with a note); its int4 g32 expert stacks are repacked, each element (code − 8) · scale exactly")
  func kimiInt4ExpertsRepackIntoQ4_0() throws {
    let sample = TestPaths.sample("tiny-kimi-k2.5")
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-kimi-q4_0"), "kimi-q4_0.gguf")
    let (plan, report) = try Self.convertReporting(sample, to: output, preset: .mostlyQ4_0)
    let stacks = plan.tensors.filter { $0.info.name.contains("_exps.") }
    #expect(stacks.count == 3 && stacks.allSatisfy { $0.repack == .symmetricInt4ToQ4_0 && $0.info.type == .q4_0 })
    // Only the int4 sources repack: the BF16 shared expert is quantized by ggml's Q4_0 as llama-quantize would.
    #expect(plan.tensors.filter { $0.repack != nil }.count == stacks.count)
    #expect(plan.tensors.first { $0.info.name == "blk.1.ffn_up_shexp.weight" }?.repack == nil)
    #expect(plan.notes.contains { $0.contains("outside the language model") && $0.contains("mmproj") })
    #expect(report.repacked.map(\.name) == stacks.map(\.info.name) && report.repacked.allSatisfy { $0.inexactBlocks == 0 })

    let file = try GGUFFile(path: output)
    let checkpoint = try Checkpoint.open(sample)
    let kernels = try #require(GGMLKernels.forType(.q4_0))
    let down = try #require(file.tensors.firstIndex { $0.name == "blk.1.ffn_down_exps.weight" })
    let rowLength = file.tensors[down].dimensions[0]
    var values = [Float](repeating: 0, count: file.tensors[down].elementCount)
    let bytes = file.bytes(ofTensor: down)
    try values.withUnsafeMutableBufferPointer { try kernels.dequantize(bytes, rowLength: rowLength, into: $0) }
    let perExpert = values.count / 4
    for expert in 0..<4 {
      let group = try #require(WeightGrouping.groups(of: checkpoint.entries).first {
        $0.modulePath == "language_model.model.layers.1.mlp.experts.\(expert).down_proj"
      })
      let int4 = try Int4PackQuantized.symmetricGroups(WeightDecoding.packedTensors(of: group, in: checkpoint), groupSize: 32)
      for i in 0..<perExpert {
        let exact = Float(Int(int4.offsetCodes[i]) - 8) * int4.scales[i / 32]
        #expect(values[expert * perExpert + i].bitPattern == exact.bitPattern)
      }
    }
  }

  @Test("a repacked int4 scale that F16 cannot hold is rounded to nearest even and reported with its block; the other blocks stay exact")
  func inexactRepackReported() throws {
    // Scale 5 of the weight (row 1, group 1 of 4) becomes BF16 0x3581 = 2^-20 · (1 + 2^-7): an F16 subnormal
    // has no bit for 2^-27.
    let copy = try Self.patchedCopy(
      of: "tiny-kimi-k2.5", into: "gguf-kimi-inexact-input",
      tensor: "language_model.model.layers.1.mlp.experts.2.up_proj.weight_scale", byteOffset: 2 * 5, bytes: [0x81, 0x35])
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-kimi-inexact"), "kimi-inexact.gguf")
    let (_, report) = try Self.convertReporting(copy, to: output, preset: .mostlyQ4_0)
    let up = try #require(report.repacked.first { $0.name == "blk.1.ffn_up_exps.weight" })
    #expect(up.inexactBlocks == 1)
    #expect(up.firstInexact?.source == "language_model.model.layers.1.mlp.experts.2.up_proj.weight" && up.firstInexact?.block == 5)
    #expect(report.repacked.filter { $0.name != up.name }.allSatisfy { $0.inexactBlocks == 0 })
  }

  @Test("a repacked int4 scale past F16's range is refused: Q4_0's d would be infinite, not rounded")
  func overflowingRepackScaleRefused() throws {
    // BF16 0x4780 = 65536: finite, but above F16's 65504.
    let copy = try Self.patchedCopy(
      of: "tiny-kimi-k2.5", into: "gguf-kimi-overflow-input",
      tensor: "language_model.model.layers.1.mlp.experts.1.gate_proj.weight_scale", byteOffset: 0, bytes: [0x80, 0x47])
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-kimi-overflow"), "kimi-overflow.gguf")
    do {
      _ = try Self.convertReporting(copy, to: output, preset: .mostlyQ4_0)
      Issue.record("an F16-overflowing scale must fail the conversion")
    } catch {
      #expect("\(error)".contains("experts.1.gate_proj") && "\(error)".contains("65536"), "\(error)")
    }
    #expect(!FileSystem.exists(output))
  }

  @Test("Smelt's own MXFP4 output to mxfp4_moe: every routed-expert stack is repacked, its blocks the source's codes and E8M0 scales as ggml lays them out")
  func mxfp4ExpertsRepackIntoGGMLMXFP4() throws {
    let mxfp4 = try FormatRegistryTests.convert(
      TestPaths.sample("tiny-deepseek-v3"), .group(.mxfp4(.compressedTensors)), into: "gguf-mxfp4-source")
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-mxfp4-moe"), "mxfp4-moe.gguf")
    let (plan, report) = try Self.convertReporting(mxfp4.directory, to: output, preset: .mostlyMXFP4_MOE)
    let stacks = plan.tensors.filter { $0.info.name.contains("_exps.") }
    #expect(!stacks.isEmpty && stacks.allSatisfy { $0.repack == .mxfp4 && $0.info.type == .mxfp4 })
    #expect(report.repacked.count == stacks.count && report.repacked.allSatisfy { $0.inexactBlocks == 0 })
    let file = try GGUFFile(path: output)
    let index = try #require(file.tensors.firstIndex { $0.name == "blk.2.ffn_gate_exps.weight" })
    let group = try #require(WeightGrouping.groups(of: mxfp4.entries).first { $0.modulePath == "model.layers.2.mlp.experts.5.gate_proj" })
    let geometry = try WeightDecoding.geometry(of: group, in: mxfp4)
    let codes = try #require(try group.format.microscaledCodes(
      WeightDecoding.packedTensors(of: group, in: mxfp4), geometry: geometry, module: group.modulePath))
    let expected = GGMLRepack.mxfp4(codes: codes.codes, e8m0Scales: codes.scales, rows: codes.rowCount, columns: codes.columnCount).bytes
    let slab = Array(file.bytes(ofTensor: index))[(5 * expected.count)..<(6 * expected.count)]
    #expect(Array(slab) == expected)
  }

  /// All of GGUF tensor `name` of `file` dequantized by ggml's kernels (F32 as it is).
  static func values(of name: String, in file: GGUFFile) throws -> (values: [Float], dimensions: [Int]) {
    let index = try #require(file.tensors.firstIndex { $0.name == name })
    let info = file.tensors[index]
    let kernels = try #require(GGMLKernels.forType(info.type))
    var values = [Float](repeating: 0, count: info.elementCount)
    try values.withUnsafeMutableBufferPointer { try kernels.dequantize(file.bytes(ofTensor: index), rowLength: info.rowLength, into: $0) }
    return (values, info.dimensions)
  }

  /// Hugging Face weight `name` of `checkpoint` decoded by the one weight decoder.
  static func decoded(_ name: String, in checkpoint: some TensorStore) throws -> [Float] {
    let group = try #require(WeightGrouping.groups(of: checkpoint.entries).first { WeightDecoding.logicalName(of: $0) == name })
    return try WeightDecoding.decode(group: group, in: checkpoint).values
  }

  @Test("gpt-oss to mxfp4_moe: gate = even rows and up = odd rows of the fused MXFP4 gate_up_proj, repacked exactly per expert; biases split alike; attention at Q8_0, sinks and norms F32")
  func gptOssFusedExpertsSplitAndRepack() throws {
    let sample = TestPaths.sample("tiny-gpt-oss")
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-gpt-oss-mxfp4"), "gpt-oss-mxfp4.gguf")
    let (plan, report) = try Self.convertReporting(sample, to: output, preset: .mostlyMXFP4_MOE)
    let stacks = plan.tensors.filter { $0.info.name.hasSuffix("_exps.weight") }
    #expect(stacks.count == 6 && stacks.allSatisfy { $0.repack == .mxfp4 && $0.info.type == .mxfp4 })
    #expect(report.repacked.count == 6 && report.repacked.allSatisfy { $0.inexactBlocks == 0 })
    let types = Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.info.name, $0.info.type) })
    #expect(types["blk.0.attn_q.weight"] == .q8_0 && types["blk.0.attn_sinks.weight"] == .f32)
    #expect(types["blk.0.ffn_gate_exps.bias"] == .f32 && types["blk.1.post_attention_norm.weight"] == .f32)

    let file = try GGUFFile(path: output)
    #expect(file.metadata["general.architecture"] == .string("gpt-oss"))
    #expect(file.metadata["gpt-oss.attention.sliding_window"] == .uint32(128))
    #expect(file.metadata["gpt-oss.vocab_size"] == .uint32(256), "no tokenizer: llama.cpp sizes the vocabulary by it")
    let checkpoint = try Checkpoint.open(sample)
    let (E, I, H) = (4, 64, 128)
    let gateUp = try Self.decoded("model.layers.1.mlp.experts.gate_up_proj", in: checkpoint)  // [E, 2I, H]
    let bias = try Self.decoded("model.layers.1.mlp.experts.gate_up_proj_bias", in: checkpoint)  // [E, 2I]
    for (leaf, offset) in [("ffn_gate_exps", 0), ("ffn_up_exps", 1)] {
      let (weight, dimensions) = try Self.values(of: "blk.1.\(leaf).weight", in: file)
      #expect(dimensions == [H, I, E])
      let (split, biasDimensions) = try Self.values(of: "blk.1.\(leaf).bias", in: file)
      #expect(biasDimensions == [I, E])
      var mismatches = 0
      for e in 0..<E {
        for j in 0..<I {
          for c in 0..<H where weight[(e * I + j) * H + c] != gateUp[(e * 2 * I + 2 * j + offset) * H + c] { mismatches += 1 }
          if split[e * I + j] != bias[e * 2 * I + 2 * j + offset] { mismatches += 1 }
        }
      }
      #expect(mismatches == 0, "\(leaf)")
    }
    let down = try Self.decoded("model.layers.0.mlp.experts.down_proj", in: checkpoint)  // [E, H, I]
    #expect(try Self.values(of: "blk.0.ffn_down_exps.weight", in: file).values == down)
  }

  @Test("Qwen3-MoE to Q4_K_M as qwen3moe: per-expert projections stacked, each slab the kernels' blocks of that expert; QK-norms F32; a dense layer refused before any output")
  func qwen3MoeStackedExperts() throws {
    let sample = TestPaths.sample("tiny-qwen3-moe")
    let directory = try TestPaths.scratchDirectory("gguf-qwen3-moe")
    let output = FileSystem.join(directory, "qwen3-moe-q4_k_m.gguf")
    let plan = try Self.convert(sample, to: output)
    #expect(plan.architecture == "qwen3moe")
    let file = try GGUFFile(path: output)
    #expect(file.tensors.map(\.name) == plan.tensors.map(\.info.name))
    #expect(file.metadata["qwen3moe.expert_feed_forward_length"] == .uint32(64))
    #expect(file.tensors.first { $0.name == "blk.1.attn_k_norm.weight" }?.type == .f32)
    let checkpoint = try Checkpoint.open(sample)
    let gate = try #require(file.tensors.firstIndex { $0.name == "blk.1.ffn_gate_exps.weight" })
    #expect(file.tensors[gate].dimensions == [128, 64, 4])
    let expert = try Self.encoded("model.layers.1.mlp.experts.2.gate_proj.weight", in: checkpoint, type: file.tensors[gate].type)
    #expect(Array(Array(file.bytes(ofTensor: gate))[(2 * expert.count)..<(3 * expert.count)]) == expert)

    let refused = FileSystem.join(directory, "dense-layer.gguf")
    let error = #expect(throws: (any Error).self) { _ = try Self.convert(TestPaths.sample("tiny-qwen3-moe-fp8"), to: refused) }
    #expect(error.map { "\($0)" }?.contains("makes layer 0 dense") == true, "\(String(describing: error))")
    #expect(!FileSystem.exists(refused))
  }

  @Test("DeepSeek-V4 to deepseek4: the I64 hash table written I32 (same values), FP4 experts repacked into MXFP4 exactly, the router kept BF16 where llama-quantize keeps the converter's type")
  func deepSeekV4HashTableAndExperts() throws {
    let sample = TestPaths.sample("tiny-deepseek-v4")
    let source = try Checkpoint.open(sample)
    let directory = try TestPaths.scratchDirectory("gguf-deepseek-v4")
    let f32 = FileSystem.join(directory, "f32.gguf")
    _ = try Self.convert(sample, to: f32) { $0.preset = .allF32 }
    let file = try GGUFFile(path: f32)
    let table = try #require(file.tensors.firstIndex { $0.name == "blk.0.ffn_gate_tid2eid.weight" })
    #expect(file.tensors[table].type == .i32 && file.tensors[table].dimensions == [2, 256])
    let written = Array(file.bytes(ofTensor: table)).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    let stored = try source.bytes(of: "layers.0.ffn.gate.tid2eid").copy().withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
    #expect(written.map(Int64.init) == stored && Set(stored).isSubset(of: Set(0..<4)))
    // F32 everywhere else, the experts included (FP4 values decoded exactly).
    #expect(file.tensors.enumerated().allSatisfy { $0.element.type == .f32 || $0.offset == table })
    let experts = try #require(file.tensors.firstIndex { $0.name == "blk.1.ffn_up_exps.weight" })
    let up = Array(file.bytes(ofTensor: experts)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    #expect(Array(up[(2 * 64 * 128)..<(3 * 64 * 128)]) == (try Self.decoded("layers.1.ffn.experts.2.w3.weight", in: source)))

    let (plan, report) = try Self.convertReporting(sample, to: FileSystem.join(directory, "mxfp4.gguf"), preset: .mostlyMXFP4_MOE)
    let stacks = plan.tensors.filter { $0.info.name.contains("_exps.") }
    #expect(stacks.count == 6 && stacks.allSatisfy { $0.info.type == .mxfp4 && $0.repack == .mxfp4 })
    #expect(report.repacked.map(\.name) == stacks.map(\.info.name) && report.repacked.allSatisfy { $0.inexactBlocks == 0 })
    let types = Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.info.name, $0.info.type) })
    #expect(types["blk.1.ffn_gate_inp.weight"] == .bf16 && types["blk.0.ffn_gate_tid2eid.weight"] == .i32)
    #expect(types["blk.1.attn_q_a.weight"] == .q8_0 && types["blk.1.attn_norm.weight"] == .f32)
  }

  @Test("Qwen3.5-MoE to F32 qwen35moe: value heads tiled along rows and columns, 1 + w norms, -exp(A_log), fused gate/up split; FP8 release alike")
  func qwen35MoeConverterArithmetic() throws {
    for sample in ["tiny-qwen3.5-moe", "tiny-qwen3.5-moe-fp8"] {
      let source = try Checkpoint.open(TestPaths.sample(sample))
      let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-\(sample)"), "f32.gguf")
      _ = try Self.convert(TestPaths.sample(sample), to: output) { $0.preset = .allF32 }
      let file = try GGUFFile(path: output)
      func values(_ name: String) throws -> [Float] {
        let index = try #require(file.tensors.firstIndex { $0.name == name }, "\(name)")
        return Array(file.bytes(ofTensor: index)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      }
      let hf = "model.language_model.layers.0.linear_attn."
      // in_proj_qkv [256, 64]: q and k rows (2 · 64) stay; the v rows (4 heads of 32: g0v0 g0v1 g1v0 g1v1) become g0v0 g1v0 g0v1 g1v1.
      let qkv = try Self.decoded(hf + "in_proj_qkv.weight", in: source), written = try values("blk.0.attn_qkv.weight")
      func rows(_ m: [Float], _ r: Range<Int>) -> [Float] { Array(m[(r.lowerBound * 64)..<(r.upperBound * 64)]) }
      #expect(rows(written, 0..<128) == rows(qkv, 0..<128))
      #expect(rows(written, 160..<192) == rows(qkv, 192..<224), "output head 1 (g1v0) is source head 2")
      #expect(rows(written, 192..<224) == rows(qkv, 160..<192))
      // out_proj [64, 128]: the same permutation on its columns.
      let out = try Self.decoded(hf + "out_proj.weight", in: source), writtenOut = try values("blk.0.ssm_out.weight")
      #expect(writtenOut[5 * 128 + 32 + 7] == out[5 * 128 + 64 + 7] && writtenOut[5 * 128 + 7] == out[5 * 128 + 7])
      // A_log [4] → ssm_a = -exp, tiled; dt_bias tiled.
      let aLog = try Self.decoded(hf + "A_log", in: source), ssmA = try values("blk.0.ssm_a")
      #expect(ssmA == [0, 2, 1, 3].map { -CMath.exp(aLog[$0]) })
      #expect(try values("blk.0.ssm_dt.bias") == [0, 2, 1, 3].map { try! Self.decoded(hf + "dt_bias", in: source)[$0] })
      let norm = try Self.decoded("model.language_model.layers.1.input_layernorm.weight", in: source)
      #expect(try values("blk.1.attn_norm.weight") == norm.map { $0 + 1 })
      #expect(try values("blk.0.ssm_norm.weight") == (try Self.decoded(hf + "norm.weight", in: source)))
      // up = the second half of each expert's gate_up rows (fused BF16 release) or that expert's up_proj (FP8).
      let up = try values("blk.1.ffn_up_exps.weight")
      let expert3 = Array(up[(3 * 64 * 64)...])
      let expected: [Float]
      if sample == "tiny-qwen3.5-moe" {
        let fused = try Self.decoded("model.language_model.layers.1.mlp.experts.gate_up_proj", in: source)
        expected = Array(fused[(3 * 128 * 64 + 64 * 64)..<(4 * 128 * 64)])
      } else {
        expected = try Self.decoded("model.language_model.layers.1.mlp.experts.3.up_proj.weight", in: source)
      }
      #expect(expert3 == expected, "\(sample)")
      #expect(file.metadata["qwen35moe.ssm.group_count"] == .uint32(2))
      // Smelt has no Gated DeltaNet forward pass, so no reverse map: the refusal names the architecture (not
      // "config.json has ...").
      let error = #expect(throws: (any Error).self) { _ = try GGUFCheckpoint(path: output) }
      #expect(error.map { "\($0)" }?.contains("general.architecture is 'qwen35moe'") == true, "\(String(describing: error))")
    }
  }

  /// Converts `sample` to an F32 GGUF and reads it back as a checkpoint: the same logical weights as the source (an
  /// FP8 weight and its scales are one), each of `probes` decoding to the source's values exactly. Returns the
  /// rebuilt config.json.
  static func readBack(_ sample: String, probes: [String]) throws -> JSONObject {
    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-read-back-\(sample)"), "f32.gguf")
    _ = try Self.convert(TestPaths.sample(sample), to: output) { $0.preset = .allF32 }
    let gguf = try GGUFCheckpoint(path: output)
    let source = try Checkpoint.open(TestPaths.sample(sample))
    let logical = { (entries: [TensorEntry]) in Set(WeightGrouping.groups(of: entries).map(WeightDecoding.logicalName(of:))) }
    #expect(logical(gguf.entries) == logical(source.entries))
    for name in probes {
      let group = try #require(WeightGrouping.groups(of: gguf.entries).first { WeightDecoding.logicalName(of: $0) == name })
      #expect(try WeightDecoding.decode(group: group, in: gguf).values == (try Self.decoded(name, in: source)), "\(name)")
    }
    return try #require(gguf.config)
  }

  @Test("a qwen3moe GGUF reads back as the checkpoint it holds: the rebuilt config.json, and every F32 tensor (experts as slabs of their stacks) equal to the source's decoded values")
  func qwen3MoeReadsBack() throws {
    let config = try Self.readBack(
      "tiny-qwen3-moe", probes: ["model.layers.1.mlp.experts.3.down_proj.weight", "model.layers.0.self_attn.k_norm.weight", "lm_head.weight"])
    #expect(config["architectures"] == ["Qwen3MoeForCausalLM"] && config["num_experts"] == 4 && config["moe_intermediate_size"] == 64)
    #expect(config["head_dim"] == 64 && config["num_key_value_heads"] == 2 && config["mlp_only_layers"] == [])
  }

  @Test("a deepseek32 GGUF of the FP8 release reads back: deepseek2's map (kv_b_proj from its MLA halves, NextN) and each block's indexer; DeepseekV32ForCausalLM with the indexer sizes")
  func deepSeek32ReadsBack() throws {
    let config = try Self.readBack(
      "tiny-deepseek-v3.2-fp8",
      probes: [
        "model.layers.1.self_attn.indexer.wq_b.weight", "model.layers.0.self_attn.indexer.k_norm.bias",
        "model.layers.1.self_attn.kv_b_proj.weight", "model.layers.1.mlp.experts.2.up_proj.weight",
      ])
    #expect(config["architectures"] == ["DeepseekV32ForCausalLM"] && config["model_type"] == "deepseek_v32")
    #expect(config["index_n_heads"] == 2 && config["index_head_dim"] == 128 && config["index_topk"] == 4)
  }

  @Test("a glm4moe GGUF of the FP8 release reads back: the leading dense layer, biases and QK-norms, shared and routed experts, the NextN layer; the config from the metadata and the tensors present")
  func glm4MoeReadsBack() throws {
    let config = try Self.readBack(
      "tiny-glm4-moe-fp8",
      probes: [
        "model.layers.0.mlp.down_proj.weight", "model.layers.1.self_attn.q_proj.bias", "model.layers.1.mlp.shared_experts.up_proj.weight",
        "model.layers.1.mlp.experts.3.gate_proj.weight", "model.layers.2.eh_proj.weight", "model.layers.2.mlp.gate.e_score_correction_bias",
      ])
    #expect(config["architectures"] == ["Glm4MoeForCausalLM"] && config["first_k_dense_replace"] == 1 && config["num_nextn_predict_layers"] == 1)
    #expect(config["partial_rotary_factor"] == 0.5 && config["attention_bias"] == true && config["use_qk_norm"] == true)
    #expect(config["routed_scaling_factor"] == 2.5 && config["num_hidden_layers"] == 2)
  }

  @Test("a minimax-m2 GGUF of the FP8 release reads back: Mixtral-named experts from the stacks, the all-head QK-norms, the sigmoid router's bias; the config llama.cpp's minimax-m2 computes")
  func miniMaxM2ReadsBack() throws {
    let config = try Self.readBack(
      "tiny-minimax-m2-fp8",
      probes: [
        "model.layers.1.block_sparse_moe.experts.2.w2.weight", "model.layers.0.self_attn.q_norm.weight",
        "model.layers.0.block_sparse_moe.e_score_correction_bias", "model.layers.1.self_attn.o_proj.weight",
      ])
    #expect(config["architectures"] == ["MiniMaxM2ForCausalLM"] && config["num_local_experts"] == 4 && config["intermediate_size"] == 64)
    #expect(config["rotary_dim"] == 32 && config["scoring_func"] == "sigmoid" && config["qk_norm_type"] == "per_layer")
  }

  @Test("a gpt-oss GGUF reads back: attention with biases and sinks, the router's bias, and the fused experts rebuilt from the gate/up/down stacks in the plain layout ([E, in, out], gate and up interleaved) — equal to the release's BF16 conversion")
  func gptOssReadsBack() throws {
    let config = try Self.readBack(
      "tiny-gpt-oss",
      probes: ["model.layers.0.self_attn.sinks", "model.layers.1.self_attn.o_proj.bias", "model.layers.1.mlp.router.bias", "lm_head.weight"])
    #expect(config["architectures"] == ["GptOssForCausalLM"] && config["num_local_experts"] == 4 && config["intermediate_size"] == 64)
    #expect(config["layer_types"] == ["sliding_attention", "full_attention"] && config["sliding_window"] == 128 && config["swiglu_limit"] == 7.0)
    #expect(config["rope_scaling"]?["factor"]?.doubleValue == 32 && config["rope_scaling"]?["truncate"] == false)

    let output = FileSystem.join(try TestPaths.scratchDirectory("gguf-gpt-oss-fused-read-back"), "f32.gguf")
    _ = try Self.convert(TestPaths.sample("tiny-gpt-oss"), to: output) { $0.preset = .allF32 }
    let gguf = try GGUFCheckpoint(path: output)
    let plain = try FormatRegistryTests.convert(TestPaths.sample("tiny-gpt-oss"), .cast(.bfloat16), into: "gguf-gpt-oss-read-back-bf16")
    for name in ["gate_up_proj", "gate_up_proj_bias", "down_proj", "down_proj_bias"].map({ "model.layers.1.mlp.experts.\($0)" }) {
      #expect(gguf.entries.first { $0.name == name }?.shape == plain.entry(named: name)?.shape, "\(name)")
      #expect(try Self.decoded(name, in: gguf) == (try Self.decoded(name, in: plain)), "\(name)")
    }
    // A range across experts 1–3 rebuilds just those, equal to the same slice of the whole.
    let whole = try gguf.bytes(of: "model.layers.0.mlp.experts.down_proj", range: 0..<(4 * 64 * 128 * 4)).copy()
    let part = try gguf.bytes(of: "model.layers.0.mlp.experts.down_proj", range: 40_000..<100_000).copy()
    #expect(part == Array(whole[40_000..<100_000]))
  }

  @Test("gpt-oss in the plain layout (Smelt's --to bf16 output, experts [E, in, out]) gives the same F32 GGUF as the MXFP4 release")
  func gptOssPlainExpertsTransposedPerExpert() throws {
    let sample = TestPaths.sample("tiny-gpt-oss")
    let bf16 = try FormatRegistryTests.convert(sample, .cast(.bfloat16), into: "gguf-gpt-oss-bf16-source")
    #expect(bf16.entry(named: "model.layers.0.mlp.experts.gate_up_proj")?.shape == [4, 128, 128])
    #expect(bf16.entry(named: "model.layers.0.mlp.experts.down_proj")?.shape == [4, 64, 128], "input-major, as transformers reads it")
    let directory = try TestPaths.scratchDirectory("gguf-gpt-oss-f32")
    let fromRelease = FileSystem.join(directory, "release.gguf"), fromPlain = FileSystem.join(directory, "plain.gguf")
    _ = try Self.convertReporting(sample, to: fromRelease, preset: .allF32)
    _ = try Self.convertReporting(bf16.directory, to: fromPlain, preset: .allF32)
    let (a, b) = (try GGUFFile(path: fromRelease), try GGUFFile(path: fromPlain))
    // The same tensors (each file in its checkpoint's order: `gate_up_proj` and `gate_up_proj_blocks` sort apart).
    #expect(Set(a.tensors.map(\.name)) == Set(b.tensors.map(\.name)))
    let plainIndex = Dictionary(uniqueKeysWithValues: b.tensors.enumerated().map { ($1.name, $0) })
    for (index, tensor) in a.tensors.enumerated() where tensor.name.contains("_exps.") {
      let other = try #require(plainIndex[tensor.name])
      #expect(b.tensors[other].dimensions == tensor.dimensions)
      #expect(Array(a.bytes(ofTensor: index)) == Array(b.bytes(ofTensor: other)), "\(tensor.name)")
    }
  }
}
