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

/// A tiny DeepSeek-shaped checkpoint (hidden 64; layer 0 dense, layer 1 MoE with 2 routed experts and a shared
/// expert) written by the test: every linear's input dimension is 32 or 64, so group 32 fits everywhere and a
/// debug-build conversion takes milliseconds. `fp8` stores the linears as DeepSeek FP8 blocks.
func writeTinyCheckpoint(_ name: String, fp8: Bool = false) throws -> String {
  let directory = try scratch(name)
  try FileSystem.createDirectory(directory)
  var linears: [(String, Int, Int)] = []
  for layer in 0..<2 {
    let p = "model.layers.\(layer)."
    linears += [
      (p + "self_attn.q_a_proj", 32, 64), (p + "self_attn.q_b_proj", 64, 32), (p + "self_attn.kv_a_proj_with_mqa", 40, 64),
      (p + "self_attn.kv_b_proj", 64, 32), (p + "self_attn.o_proj", 64, 64),
    ]
    let mlps = layer == 0 ? [p + "mlp"] : [p + "mlp.experts.0", p + "mlp.experts.1", p + "mlp.shared_experts"]
    for mlp in mlps { linears += [(mlp + ".gate_proj", 32, 64), (mlp + ".up_proj", 32, 64), (mlp + ".down_proj", 64, 32)] }
  }
  var tensors: [(PlannedTensor, [UInt8])] = []
  var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
  func values(_ count: Int, scale: Float) -> [Float] {
    (0..<count).map { i in
      seed = seed &* 6364136223846793005 &+ 1442695040888963407
      let u = Float(seed >> 40) / Float(1 << 24) - 0.5
      let outlier: Float = i % 97 == 5 ? 8 : 1
      return GroupQuantTestRounding.bf16(u * scale * outlier)
    }
  }
  func bf16Bytes(_ v: [Float]) -> [UInt8] {
    v.flatMap { x -> [UInt8] in let b = UInt16(x.bitPattern >> 16); return [UInt8(b & 0xFF), UInt8(b >> 8)] }
  }
  func plain(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
    let v = values(shape.reduce(1, *), scale: scale).map { GroupQuantTestRounding.bf16($0 + offset) }
    tensors.append((PlannedTensor(name: name, dtype: .bfloat16, shape: shape), bf16Bytes(v)))
  }
  plain("model.embed_tokens.weight", [128, 64], scale: 1)
  plain("lm_head.weight", [128, 64], scale: 0.5)
  plain("model.norm.weight", [64], scale: 0.2, offset: 1)
  for layer in 0..<2 {
    plain("model.layers.\(layer).input_layernorm.weight", [64], scale: 0.2, offset: 1)
    plain("model.layers.\(layer).post_attention_layernorm.weight", [64], scale: 0.2, offset: 1)
  }
  plain("model.layers.1.mlp.gate.weight", [2, 64], scale: 0.5)
  for (module, rows, columns) in linears {
    let v = values(rows * columns, scale: 0.1)
    guard fp8 else {
      tensors.append((PlannedTensor(name: module + ".weight", dtype: .bfloat16, shape: [rows, columns]), bf16Bytes(v)))
      continue
    }
    let layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: .block(rows: 128, columns: 128))
    var codes = [UInt8](repeating: 0, count: rows * columns)
    var scales = [Float](repeating: 0, count: layout.scaleCount)
    try v.withUnsafeBytes { input in
      try codes.withUnsafeMutableBytes { out in
        try scales.withUnsafeMutableBufferPointer { s in
          try BlockFP8.quantize(input, dtype: .float32, layout: layout, rule: .deepSeek, weights: out, scales: s)
        }
      }
    }
    tensors.append((PlannedTensor(name: module + ".weight", dtype: .float8E4M3FN, shape: [rows, columns]), codes))
    tensors.append((
      PlannedTensor(name: module + ".weight_scale_inv", dtype: .float32, shape: layout.scaleShape),
      scales.flatMap { x -> [UInt8] in (0..<4).map { UInt8(truncatingIfNeeded: x.bitPattern >> (8 * $0)) } }
    ))
  }
  let writer = try SafeTensorsFileWriter(
    path: FileSystem.join(directory, "model.safetensors"), layout: try SafeTensorsLayout(tensors: tensors.map(\.0)))
  for (tensor, bytes) in tensors { try writer.write(tensorNamed: tensor.name, bytes: bytes) }
  try writer.commit()
  var config = #"{"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 64, "model_type": "deepseek_v3", "num_hidden_layers": 2, "torch_dtype": "bfloat16""#
  if fp8 {
    config += #", "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}"#
  }
  try FileSystem.writeFileAtomically(Array((config + "}\n").utf8), to: FileSystem.join(directory, "config.json"))
  return directory
}

enum GroupQuantTestRounding {
  /// F32 → BF16 (RNE) → F32.
  static func bf16(_ x: Float) -> Float {
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
  }
}

/// Plans and runs a conversion into a fresh directory; returns the reopened output and the report.
func run(
  _ input: String, _ target: ConversionTarget, into name: String, selection: TensorSelection = TensorSelection(),
  search: Bool = false
) throws -> (Checkpoint, ConversionReport) {
  let checkpoint = try Checkpoint.open(input)
  let output = try scratch(name)
  let plan = try ConversionPlan(checkpoint: checkpoint, target: target, selection: selection, search: search)
  let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
  defer { lock.release() }
  let report = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
  return (try Checkpoint.open(output), report)
}

func group(_ module: String, in checkpoint: Checkpoint) -> WeightGroup? {
  WeightGrouping.groups(of: checkpoint.entries).first { $0.modulePath == module || $0.modulePath == module + ".weight" }
}

func snr(_ reference: [Float], _ approximation: [Float]) -> Double {
  ErrorStatistics(reference: reference, candidate: approximation).snrDecibels
}

@Suite("4-bit targets") struct GroupFormatTargetTests {
  /// (--to name, storage, round-trip SNR range in dB on the tiny checkpoint, group 32 where the format has one).
  static let cases: [(String, WeightStorage, ClosedRange<Double>)] = [
    ("int4-g128", .int4PackQuantized, 10...40), ("int4-asym", .int4PackQuantized, 10...40),
    ("gptq", .gptq, 10...40), ("mlx-affine", .mlxAffine, 10...40), ("mxfp4", .mxfp4CompressedTensors, 10...40),
    ("mxfp4-gpt-oss", .mxfp4GptOss, 10...40), ("nvfp4", .nvfp4ModelOpt, 10...40), ("nvfp4-ct", .nvfp4CompressedTensors, 10...40),
  ]

  @Test("each target converts, is detected, decodes back with the expected SNR, and the report's SNR is the decode's",
    arguments: 0..<8)
  func target(index: Int) throws {
    let (name, storage, range) = GroupFormatTargetTests.cases[index]
    let input = try writeTinyCheckpoint("tiny-\(name)")
    let target = try #require(ConversionTarget.parse(name == "int4-g128" ? "int4-g32" : name, groupSize: name == "int4-g128" ? nil : 32))
    let (out, report) = try run(input, target, into: "target-\(name)")
    let source = try Checkpoint.open(input)
    let groups = WeightGrouping.groups(of: out.entries)
    #expect(groups.filter { $0.storage == storage }.count == 22, "\(name)")
    #expect(groups.filter { $0.storage != .plain && $0.storage != storage }.isEmpty)
    for module in ["model.layers.0.self_attn.q_b_proj", "model.layers.1.mlp.experts.0.down_proj", "model.layers.0.mlp.up_proj"] {
      let quantized = try #require(group(module, in: out), "\(module)")
      #expect(quantized.storage == storage)
      let decoded = try WeightDecoding.decode(group: quantized, in: out)
      let original = try WeightDecoding.decode(group: try #require(group(module + ".weight", in: source)), in: source)
      #expect(decoded.geometry.shape == original.geometry.shape)
      let measured = snr(original.values, decoded.values)
      #expect(range.contains(measured), "\(name) \(module): \(measured) dB")
      let reported = try #require(report.tensors.first { $0.name == module + ".weight" })
      #expect(abs(reported.snrDecibels - measured) < 1e-9, "\(name) \(module)")
    }
    // `smelt inspect`'s summary reports the layout with every quantized weight.
    let summary = CheckpointSummary(out)
    #expect(summary.quantization.map(\.storage) == [storage] && summary.quantization.first?.weightCount == 22, "\(name)")
    for kept in ["model.embed_tokens.weight", "lm_head.weight", "model.layers.1.mlp.gate.weight", "model.norm.weight"] {
      let same = try out.tensor(kept).copyBytes() == source.tensor(kept).copyBytes()
      #expect(same, "\(kept)")
    }
    // Reading back: a cast to BF16 dequantizes every 4-bit weight and drops the quantization blocks.
    let (bf16, _) = try run(out.directory, .cast(.bfloat16), into: "target-\(name)-bf16")
    #expect(WeightGrouping.groups(of: bf16.entries).allSatisfy { $0.storage == .plain })
    #expect(bf16.config?.quantizationConfig == nil)
    #expect(!FileSystem.exists(FileSystem.join(bf16.directory, "hf_quant_config.json")))
    #expect(!FileSystem.exists(FileSystem.join(bf16.directory, "quantize_config.json")))
  }

  @Test("--search never loses to round-to-nearest and gains on average")
  func search() throws {
    let input = try writeTinyCheckpoint("tiny-search")
    for name in ["int4-g128", "int4-asym", "mlx-affine", "mxfp4", "nvfp4-ct"] {
      let target = try #require(ConversionTarget.parse(name == "int4-g128" ? "int4-g32" : name, groupSize: name == "int4-g128" ? nil : 32))
      let (_, rtn) = try run(input, target, into: "search-rtn-\(name)")
      let (_, searched) = try run(input, target, into: "search-\(name)", search: true)
      let rtnMean = rtn.tensors.map(\.snrDecibels).reduce(0, +) / Double(rtn.tensors.count)
      let searchMean = searched.tensors.map(\.snrDecibels).reduce(0, +) / Double(searched.tensors.count)
      #expect(searchMean > rtnMean, "\(name): \(rtnMean) -> \(searchMean)")
      #expect(zip(rtn.tensors, searched.tensors).allSatisfy { $0.snrDecibels <= $1.snrDecibels + 1e-9 }, "\(name)")
    }
  }

  @Test("a group size that does not divide the input dimension is an error naming the tensor and the fix")
  func partialGroup() throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3"))
    #expect {
      _ = try ConversionPlan(checkpoint: checkpoint, target: try #require(ConversionTarget.parse("int4-g128")))
    } throws: { error in
      let text = "\(error)"
      return text.contains("q_b_proj.weight") && text.contains("192") && text.contains("--group-size")
    }
  }

  @Test("GPTQ, MLX, gpt-oss and ModelOpt outputs carry their consumers' config blocks and metadata files")
  func configBlocks() throws {
    let input = try writeTinyCheckpoint("tiny-config")
    let skip = TensorSelection(excludes: [Glob("*.self_attn.o_proj.weight"), Glob("*.mlp.gate_proj.weight")])
    let (gptq, _) = try run(input, try #require(ConversionTarget.parse("gptq", groupSize: 32)), into: "cfg-gptq", selection: skip)
    let gptqConfig = try #require(gptq.config?.raw["quantization_config"]?.objectValue)
    #expect(gptqConfig["quant_method"] == "gptq" && gptqConfig["bits"] == 4 && gptqConfig["group_size"] == 32)
    #expect(gptqConfig["sym"] == true && gptqConfig["desc_act"] == false && gptqConfig["checkpoint_format"] == "gptq")
    #expect(gptqConfig["lm_head"] == false)
    let quantizeConfig = try JSONParser.parse(try FileSystem.readFile(FileSystem.join(gptq.directory, "quantize_config.json")))
    #expect(quantizeConfig == .object(gptqConfig))
    // Decoder linears left unquantized: vLLM/GPTQModel negative `dynamic` rules, fused names included.
    let dynamic = try #require(gptqConfig["dynamic"]?.objectValue)
    #expect(dynamic.keys == [#"-:^model\.layers\.\d+\.mlp\.(gate_proj|gate_up_proj)$"#, #"-:^model\.layers\.\d+\.self_attn\.o_proj$"#])

    let (mlx, _) = try run(input, try #require(ConversionTarget.parse("mlx-affine", groupSize: 32, bits: 8)), into: "cfg-mlx", selection: skip)
    let quantization = try #require(mlx.config?.raw["quantization"]?.objectValue)
    #expect(quantization.keys == [
      "group_size", "bits", "mode", "model.embed_tokens", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj",
      "model.layers.1.self_attn.o_proj", "lm_head",
    ] || Set(quantization.keys) == Set([
      "group_size", "bits", "mode", "model.embed_tokens", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj",
      "model.layers.1.self_attn.o_proj", "lm_head",
    ]))
    #expect(quantization["group_size"] == 32 && quantization["bits"] == 8 && quantization["mode"] == "affine")
    #expect(quantization["lm_head"] == false && quantization["model.layers.0.mlp.gate_proj"] == false)
    #expect(mlx.config?.raw["quantization_config"] == .object(quantization))
    let geometry = try WeightDecoding.geometry(of: try #require(group("model.layers.0.mlp.up_proj", in: mlx)), in: mlx)
    #expect(geometry.bits == 8 && geometry.groupSize == 32 && geometry.shape == [32, 64])

    let (modelOpt, _) = try run(input, try #require(ConversionTarget.parse("nvfp4")), into: "cfg-modelopt")
    let hf = try JSONParser.parse(try FileSystem.readFile(FileSystem.join(modelOpt.directory, "hf_quant_config.json")))
    #expect(hf["quantization"]?["quant_algo"] == "NVFP4" && hf["quantization"]?["group_size"] == 16)
    #expect(hf["quantization"]?["exclude_modules"] == ["lm_head", "model.embed_tokens", "model.layers.*.mlp.gate"])
    let opt = try #require(modelOpt.config?.raw["quantization_config"]?.objectValue)
    #expect(opt["quant_method"] == "modelopt" && opt["quant_algo"] == "NVFP4")
    #expect(opt["ignore"] == hf["quantization"]?["exclude_modules"])
    #expect(opt["config_groups"]?["group_0"]?["weights"]?["group_size"] == 16)

    let (gptOss, _) = try run(input, try #require(ConversionTarget.parse("mxfp4-gpt-oss")), into: "cfg-gptoss")
    let oss = try #require(gptOss.config?.raw["quantization_config"]?.objectValue)
    #expect(oss == JSONObject(members: [
      ("modules_to_not_convert", ["lm_head", "model.embed_tokens", "model.layers.*.mlp.gate"]), ("quant_method", "mxfp4"),
    ]))
    #expect(gptOss.contains("model.layers.0.mlp.up_proj.weight_blocks") && gptOss.contains("model.layers.0.mlp.up_proj.weight_scales"))
  }

  @Test("a cast of an MLX output drops MLX's quantization block with quantization_config (mlx-lm reads the first)")
  func castOfMLXDropsQuantization() throws {
    let input = try writeTinyCheckpoint("tiny-mlx-cast")
    let (mlx, _) = try run(input, try #require(ConversionTarget.parse("mlx-affine", groupSize: 32)), into: "mlx-cast-src")
    #expect(mlx.config?.raw["quantization"]?.objectValue != nil)
    let (f32, _) = try run(mlx.directory, .cast(.float32), into: "mlx-cast-f32")
    #expect(f32.config?.raw["quantization"] == nil)
    #expect(f32.config?.raw["quantization_config"] == nil)
    #expect(f32.config?.raw["torch_dtype"] == "float32")
  }

  @Test("an FP8-block checkpoint requantizes from its exact F32 dequantization, never through BF16")
  func fp8Input() throws {
    let input = try writeTinyCheckpoint("tiny-fp8", fp8: true)
    let target = try #require(ConversionTarget.parse("int4-g32"))
    let (out, _) = try run(input, target, into: "fp8-int4", selection: TensorSelection(excludes: [Glob("*.o_proj.weight")]))
    let source = try Checkpoint.open(input)
    var checked = 0
    var differsViaBF16 = false
    for module in ["model.layers.0.self_attn.kv_a_proj_with_mqa", "model.layers.1.mlp.experts.0.gate_proj", "model.layers.0.mlp.down_proj"] {
      let fp8 = try #require(group(module, in: source))
      #expect(fp8.storage == .fp8Block)
      let exact = try WeightDecoding.decode(group: fp8, in: source)
      func quantize(_ values: [Float]) throws -> [PackedTensor] {
        try values.withUnsafeBufferPointer { buffer in
          let weight = try WeightMatrix(values: buffer, rowCount: exact.geometry.rows, columnCount: exact.geometry.columns, dtype: .float32)
          return Int4PackQuantized.tensors(try Int4GroupQuantizer.quantize(weight, groupSize: 32, symmetry: .symmetric, scaleDType: .bfloat16))
        }
      }
      let expected = try quantize(exact.values)
      for tensor in expected {
        let written = try out.tensor(module + "." + tensor.nameSuffix)
        let same = written.dtype == tensor.dtype && written.shape == tensor.shape && written.copyBytes() == tensor.bytes
        #expect(same, "\(module).\(tensor.nameSuffix)")
        checked += 1
      }
      let viaBF16 = try quantize(exact.values.map(GroupQuantTestRounding.bf16))
      if viaBF16[0].bytes != expected[0].bytes || viaBF16[1].bytes != expected[1].bytes { differsViaBF16 = true }
    }
    #expect(checked == 9)
    #expect(differsViaBF16, "the test data should distinguish the two paths")
    // Kept FP8 weights are dequantized to BF16: the compressed-tensors consumer does not read weight_scale_inv.
    let kept = try out.tensor("model.layers.1.self_attn.o_proj.weight")
    #expect(kept.dtype == .bfloat16)
    #expect(!out.contains("model.layers.1.self_attn.o_proj.weight_scale_inv"))
    #expect(out.config?.raw["quantization_config"]?["quant_method"] == "compressed-tensors")
  }
}

@Suite("Mixed recipes") struct RecipeTests {
  let defaults = ConversionRecipe.SchemeDefaults()

  @Test("routed experts int4, attention fp8-block, the rest kept: a compressed-tensors config vLLM accepts")
  func expertsInt4AttentionFP8() throws {
    let input = try writeTinyCheckpoint("tiny-recipe")
    let recipe = ConversionRecipe(
      rules: [
        try ConversionRecipe.parseRule("*.mlp.experts.*=int4-g32", defaults: defaults),
        try ConversionRecipe.parseRule("*.self_attn.*=fp8-block", defaults: defaults),
      ], fallback: .keep)
    let (out, _) = try run(input, .mixed(recipe), into: "recipe-ct")
    let groups = WeightGrouping.groups(of: out.entries)
    #expect(group("model.layers.1.mlp.experts.1.down_proj", in: out)?.storage == .int4PackQuantized)
    #expect(group("model.layers.0.self_attn.o_proj", in: out)?.storage == .fp8CompressedTensors)
    #expect(group("model.layers.1.mlp.shared_experts.up_proj.weight", in: out)?.storage == .plain)
    #expect(groups.filter { $0.storage == .int4PackQuantized }.count == 6)
    #expect(groups.filter { $0.storage == .fp8CompressedTensors }.count == 10)
    #expect(try out.tensor("model.layers.0.self_attn.o_proj.weight_scale").dtype == .bfloat16)
    // Norms inside self_attn-matching names would not be touched either (only linear weights are).
    #expect(try out.tensor("model.layers.0.input_layernorm.weight").dtype == .bfloat16)

    func re(_ module: String) -> JSONValue { .string("re:^" + module.replacingDots() + "$") }
    let expected: JSONValue = [
      "config_groups": [
        "group_0": [
          "format": "float-quantized",
          "input_activations": [
            "num_bits": 8, "type": "float", "symmetric": true, "group_size": 128, "strategy": "group", "dynamic": true,
          ],
          "output_activations": nil,
          "targets": [
            re("model.layers.#.self_attn.kv_a_proj_with_mqa"), re("model.layers.#.self_attn.kv_b_proj"),
            re("model.layers.#.self_attn.o_proj"), re("model.layers.#.self_attn.q_a_proj"), re("model.layers.#.self_attn.q_b_proj"),
          ],
          "weights": [
            "num_bits": 8, "type": "float", "symmetric": true, "group_size": nil, "strategy": "block",
            "block_structure": [128, 128], "dynamic": false,
          ],
        ],
        "group_1": [
          "format": "pack-quantized", "input_activations": nil, "output_activations": nil,
          "targets": [
            re("model.layers.#.mlp.experts.#.down_proj"), re("model.layers.#.mlp.experts.#.gate_proj"),
            re("model.layers.#.mlp.experts.#.up_proj"),
          ],
          "weights": ["num_bits": 4, "type": "int", "symmetric": true, "group_size": 32, "strategy": "group", "dynamic": false],
        ],
      ],
      "format": "mixed-precision",
      "global_compression_ratio": nil,
      "ignore": [
        "lm_head", "model.embed_tokens", re("model.layers.#.mlp.down_proj"), re("model.layers.#.mlp.gate_proj"),
        re("model.layers.#.mlp.up_proj"), re("model.layers.#.mlp.gate"), re("model.layers.#.mlp.shared_experts.down_proj"),
        re("model.layers.#.mlp.shared_experts.gate_proj"), re("model.layers.#.mlp.shared_experts.up_proj"),
      ],
      "kv_cache_scheme": nil,
      "quant_method": "compressed-tensors",
      "quantization_status": "compressed",
      "sparsity_config": [:],
      "transform_config": [:],
    ]
    let actual = try #require(out.config?.raw["quantization_config"])
    #expect(actual == expected)
  }

  @Test("rules parse with parameters, recipe files parse, and families that no consumer reads together are refused")
  func parsing() throws {
    let rule = try ConversionRecipe.parseRule("*.mlp.experts.*=mlx-affine:bits=8,group=32", defaults: defaults)
    #expect(rule.glob.pattern == "*.mlp.experts.*")
    #expect(rule.scheme == .target(.group(.mlxAffine(bits: 8, groupSize: 32))))
    #expect(try ConversionRecipe.parseRule("lm_head=keep", defaults: defaults).scheme == .keep)
    #expect(throws: ConversionError.self) { try ConversionRecipe.parseRule("*.x=int5", defaults: defaults) }
    #expect(throws: ConversionError.self) { try ConversionRecipe.parseRule("*.x=int4-g128:group=48", defaults: defaults) }
    let file = Array(#"{"rules": [{"match": "*.mlp.experts.*", "scheme": "int4-g128"}, {"match": "*.self_attn.*", "scheme": "fp8-block"}], "default": "keep"}"#.utf8)
    let recipe = try ConversionRecipe.parse(json: file, path: "r.json", defaults: defaults)
    #expect(recipe.rules.count == 2 && recipe.fallback == .keep)
    #expect(try recipe.family() == .compressedTensors)
    let mixedFamilies = ConversionRecipe(
      rules: [
        try ConversionRecipe.parseRule("*.experts.*=mlx-affine", defaults: defaults),
        try ConversionRecipe.parseRule("*.self_attn.*=int4-g128", defaults: defaults),
      ], fallback: .keep)
    #expect { try mixedFamilies.family() } throws: { "\($0)".contains("cannot be mixed") }
    let fp8WithMLX = ConversionRecipe(
      rules: [try ConversionRecipe.parseRule("*.experts.*=mlx-affine", defaults: defaults)],
      fallback: try ConversionRecipe.parseScheme("fp8-block", defaults: defaults))
    #expect(throws: ConversionError.self) { try fp8WithMLX.family() }
    #expect(throws: ConversionError.self) {
      try ConversionRecipe.parse(json: Array(#"{"rules": [], "fallback": "keep"}"#.utf8), path: "r.json", defaults: defaults)
    }
  }

  @Test("MLX recipes: per-module overrides for the minority scheme, false for kept linears")
  func mlxRecipe() throws {
    let input = try writeTinyCheckpoint("tiny-mlx-recipe")
    let recipe = ConversionRecipe(
      rules: [
        try ConversionRecipe.parseRule("*.self_attn.*=mlx-affine:bits=8,group=32", defaults: defaults),
        try ConversionRecipe.parseRule("*.shared_experts.*=keep", defaults: defaults),
      ], fallback: try ConversionRecipe.parseScheme("mlx-affine:group=32", defaults: defaults))
    let (out, _) = try run(input, .mixed(recipe), into: "recipe-mlx")
    let quantization = try #require(out.config?.raw["quantization"]?.objectValue)
    // Attention (10 modules, 8-bit) is the majority: the top level; the 4-bit modules are overrides, routed
    // experts under mlx-lm's stacked `switch_mlp` path.
    #expect(quantization["bits"] == 8 && quantization["group_size"] == 32 && quantization["mode"] == "affine")
    #expect(quantization["model.layers.1.self_attn.q_a_proj"] == nil)
    #expect(quantization["model.layers.1.mlp.switch_mlp.up_proj"] == ["group_size": 32, "bits": 4, "mode": "affine"])
    #expect(quantization["model.layers.0.mlp.up_proj"] == ["group_size": 32, "bits": 4, "mode": "affine"])
    #expect(quantization["model.layers.1.mlp.experts.0.up_proj"] == nil)
    #expect(quantization["model.layers.1.mlp.shared_experts.up_proj"] == false)
    let attention = try WeightDecoding.geometry(of: try #require(group("model.layers.1.self_attn.q_a_proj", in: out)), in: out)
    // 8-bit/32 and 4-bit/64 fit the same shapes: the config decides.
    #expect(attention.bits == 8 && attention.groupSize == 32)
    let expert = try WeightDecoding.geometry(of: try #require(group("model.layers.1.mlp.experts.0.up_proj", in: out)), in: out)
    #expect(expert.bits == 4 && expert.groupSize == 32)
  }
}

extension String {
  /// `model.layers.#.x` → `model\.layers\.\d+\.x` (test shorthand for the writer's regexes).
  func replacingDots() -> String {
    split(separator: ".", omittingEmptySubsequences: false).map { $0 == "#" ? "\\d+" : String($0) }.joined(separator: "\\.")
  }
}
