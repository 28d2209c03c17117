import Checkpoint
import JSON
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import TestSupport
import Testing
import WeightFormats
@testable import Pipeline

@Suite("format registry: one decoder, fused NVFP4 scales, one compressed-tensors config")
struct FormatRegistryTests {
  let bf16Sample = TestPaths.sample("tiny-deepseek-v3")

  /// Every output Smelt writes, by `--to` name (and the flags that make it).
  static let outputs: [(String, ConversionTarget, Bool)] = [
    ("bf16", .cast(.bfloat16), false), ("f16", .cast(.float16), false), ("f32", .cast(.float32), false),
    ("fp8-block", .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), false),
    ("fp8-block-1x128", .fp8(FP8Layout(granularity: .block(rows: 1, columns: 128))), false),
    ("fp8-block-ue8m0", .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128), ue8m0Scales: true)), false),
    ("fp8-block-ct", .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), true),
    ("fp8-channel", .fp8(FP8Layout(granularity: .channel)), false),
    ("fp8-tensor", .fp8(FP8Layout(granularity: .tensor)), false),
    ("int4-g128", .group(.int4(groupSize: 32, symmetry: .symmetric)), false),
    ("int4-asym", .group(.int4(groupSize: 32, symmetry: .asymmetric)), false),
    ("gptq", .group(.gptq(groupSize: 32)), false), ("mlx-affine", .group(.mlxAffine(bits: 4, groupSize: 32)), false),
    ("mlx-affine-8", .group(.mlxAffine(bits: 8, groupSize: 64)), false), ("mxfp4", .group(.mxfp4(.compressedTensors)), false),
    ("mxfp4-gpt-oss", .group(.mxfp4(.gptOss)), false), ("nvfp4", .group(.nvfp4(.modelOpt)), false),
    ("nvfp4-ct", .group(.nvfp4(.compressedTensors)), false),
  ]

  static func convert(
    _ input: String, _ target: ConversionTarget, into name: String, compressedTensors: Bool = false,
    selection: TensorSelection = TensorSelection()
  ) throws -> Checkpoint {
    let checkpoint = try Checkpoint.open(input)
    let output = try scratch(name)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target, selection: selection, compressedTensorsNaming: compressedTensors)
    let lock = try OutputDirectory.prepare(output, input: input, force: true, resume: false)
    defer { lock.release() }
    _ = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
    return try Checkpoint.open(output)
  }

  @Test("every Smelt output converts again: back to BF16 (its own decoder's values), and re-quantized to FP8 blocks and int4", arguments: 0..<outputs.count)
  func convertsItsOwnOutputs(_ index: Int) throws {
    let (name, target, ct) = Self.outputs[index]
    let first = try Self.convert(bf16Sample, target, into: "pair-\(name)", compressedTensors: ct)
    let back = try Self.convert(first.directory, .cast(.bfloat16), into: "pair-\(name)-bf16")
    // BF16 output == the decoder's values of the first output, rounded to BF16.
    var checked = 0
    for group in WeightGrouping.groups(of: first.entries) where group.storage != .plain {
      let decoded = try WeightDecoding.decode(group: group, in: first)
      let out = try back.tensor(WeightDecoding.logicalName(of: group)).copyElements(as: UInt16.self)
      #expect(out == decoded.values.map { BFloat16.bits(from: $0) }, "\(name): \(group.modulePath)")
      checked += 1
    }
    #expect(checked > 0 || target == .cast(.bfloat16) || target == .cast(.float16) || target == .cast(.float32), "\(name)")
    // Re-quantizing reads through the same decoder: once from a streamed and once from a whole-decoded source.
    guard name == "fp8-block-1x128" || name == "nvfp4-ct" else { return }
    for (label, next) in [("fp8", ConversionTarget.fp8(FP8Layout(granularity: .block(rows: 128, columns: 128)))),
                          ("int4", .group(.int4(groupSize: 32, symmetry: .symmetric)))] {
      let again = try Self.convert(first.directory, next, into: "pair-\(name)-\(label)")
      let storages = Set(WeightGrouping.groups(of: again.entries).map(\.storage))
      #expect(storages.contains(label == "fp8" ? .fp8Block : .int4PackQuantized), "\(name) → \(label)")
    }
  }

  @Test("NVFP4: gate/up and q_a/kv_a siblings share one per-tensor scale (their largest |x|), others keep their own",
        arguments: [NVFP4.Producer.modelOpt, .compressedTensors])
  func fusedSiblingsShareTensorScale(_ producer: NVFP4.Producer) throws {
    let out = try Self.convert(bf16Sample, .group(.nvfp4(producer)), into: "nvfp4-fused-\(producer.rawValue)")
    let source = try Checkpoint.open(bf16Sample)
    let leaf = producer == .modelOpt ? "weight_scale_2" : "weight_global_scale"
    func scale(_ module: String) throws -> Float { try out.tensor(module + "." + leaf).copyElements(as: Float.self)[0] }
    func amax(_ module: String) throws -> Float {
      try WeightDecoding.decode(group: try #require(group(module, in: source)), in: source).values.reduce(0) { max($0, abs($1)) }
    }
    var pairs = 0
    for name in out.tensorNames where name.hasSuffix(".gate_proj." + leaf) || name.hasSuffix(".q_a_proj." + leaf) {
      let module = String(name.dropLast(leaf.count + 1))
      let sibling = module.hasSuffix("gate_proj")
        ? String(module.dropLast("gate_proj".count)) + "up_proj" : String(module.dropLast("q_a_proj".count)) + "kv_a_proj_with_mqa"
      #expect(try scale(module) == scale(sibling), "\(module)")
      let shared = max(try amax(module), try amax(sibling))
      #expect(try scale(module) == NVFP4.tensorScale(amax: shared, producer: producer, dtype: .bfloat16), "\(module)")
      pairs += 1
    }
    #expect(pairs > 10)
    // down_proj is not fused: its own amax.
    let down = "model.layers.1.mlp.experts.0.down_proj"
    #expect(try scale(down) == NVFP4.tensorScale(amax: try amax(down), producer: producer, dtype: .bfloat16))
  }

  @Test("compressed-tensors FP8: --to fp8-channel and a recipe of the same weights write byte-identical configs; embed_tokens is ignored")
  func oneCompressedTensorsConfig() throws {
    let checkpoint = try Checkpoint.open(bf16Sample)
    let defaults = ConversionRecipe.SchemeDefaults()
    for (scheme, layout) in [("fp8-channel", FP8Layout(granularity: .channel)), ("fp8-tensor", FP8Layout(granularity: .tensor))] {
      let direct = try ConversionPlan(checkpoint: checkpoint, target: .fp8(layout))
      let recipe = ConversionRecipe(
        rules: [
          try ConversionRecipe.parseRule("model.layers.*_proj=\(scheme)", defaults: defaults),
          try ConversionRecipe.parseRule("model.layers.*_proj_with_mqa=\(scheme)", defaults: defaults),
        ], fallback: .keep)
      let mixed = try ConversionPlan(
        checkpoint: checkpoint, target: .mixed(recipe), selection: TensorSelection(excludes: [Glob("*.eh_proj.*")]))
      #expect(direct.convertedJobCount == mixed.convertedJobCount)
      let a = JSONWriter(pretty: true).bytes(.object(try #require(direct.config)))
      let b = JSONWriter(pretty: true).bytes(.object(try #require(mixed.config)))
      #expect(a == b, "\(scheme)")
    }
    let block = try ConversionPlan(
      checkpoint: checkpoint, target: .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), compressedTensorsNaming: true)
    let ignore = block.config?["quantization_config"]?["ignore"]?.arrayValue?.compactMap(\.stringValue) ?? []
    #expect(ignore.contains("model.embed_tokens"))
    #expect(ignore.contains("lm_head"))
  }
}
