import JSON
import SafeTensors
import TestSupport
import Testing
import WeightFormats
@testable import Checkpoint

@Suite("Index files") struct CheckpointIndexTests {
  private func parse(_ text: String) throws -> CheckpointIndex {
    try CheckpointIndex(json: Array(text.utf8), path: "model.safetensors.index.json")
  }

  @Test("reads weight_map and total_size")
  func reads() throws {
    let index = try parse(#"{"metadata":{"total_size":96},"weight_map":{"a":"x.safetensors","b":"y.safetensors","c":"x.safetensors"}}"#)
    #expect(index.totalByteCount == 96)
    #expect(index.files == ["x.safetensors", "y.safetensors"])
    #expect(index.weightMap.count == 3)
  }

  @Test("tolerates a missing total_size, as DeepSeek's scripts write")
  func missingTotal() throws {
    #expect(try parse(#"{"metadata":{},"weight_map":{"a":"x.safetensors"}}"#).totalByteCount == nil)
  }

  @Test("refuses file names that escape the directory", arguments: [
    "../x.safetensors", "/etc/x.safetensors", "a/../../x.safetensors", "C:x.safetensors", "a//x.safetensors",
  ])
  func refusesEscapes(file: String) {
    #expect(throws: CheckpointError.self) { try parse(#"{"weight_map":{"t":"\#(file)"}}"#) }
  }

  @Test("refuses an index without weight_map or with non-safetensors files")
  func refusesMalformed() {
    #expect(throws: CheckpointError.self) { try parse(#"{"metadata":{}}"#) }
    #expect(throws: CheckpointError.self) { try parse(#"{"weight_map":{"t":"x.bin"}}"#) }
    #expect(throws: CheckpointError.self) { try parse(#"{"weight_map":{"t":3}}"#) }
    #expect(throws: CheckpointError.self) { try parse(#"[1]"#) }
  }

  @Test("writes sorted, indented JSON that parses back")
  func roundTrip() throws {
    let index = CheckpointIndex(weightMap: [("b", "2.safetensors"), ("a", "1.safetensors")], totalByteCount: 10)
    let text = String(decoding: index.jsonBytes(), as: UTF8.self)
    #expect(text.contains("\"total_size\": 10"))
    let again = try CheckpointIndex(json: index.jsonBytes(), path: "x")
    #expect(again.weightMap.map(\.tensor) == ["a", "b"])
  }
}

@Suite("config.json") struct ModelConfigTests {
  @Test("reads DeepSeek-V3 fields, rope_scaling and quantization_config")
  func deepseek() throws {
    let text = #"""
      {"architectures":["DeepseekV3ForCausalLM"],"model_type":"deepseek_v3","hidden_size":7168,"num_hidden_layers":61,
       "n_routed_experts":256,"q_lora_rank":1536,"kv_lora_rank":512,"routed_scaling_factor":2.5,"norm_topk_prob":true,
       "rope_scaling":{"type":"yarn","factor":40,"original_max_position_embeddings":4096,"beta_fast":32,"beta_slow":1,"mscale":1.0,"mscale_all_dim":1.0},
       "quantization_config":{"activation_scheme":"dynamic","fmt":"e4m3","quant_method":"fp8","weight_block_size":[128,128]}}
      """#
    let config = try ModelConfig(json: Array(text.utf8), path: "config.json")
    #expect(config.hiddenSize == 7168)
    #expect(config.routedExpertCount == 256)
    #expect(config.ropeScaling?.factor == 40)
    #expect(config.ropeScaling?.originalMaxPositionEmbeddings == 4096)
    #expect(config.quantizationConfig?.weightBlockSize == [128, 128])
    #expect(config.quantizationConfig?.quantMethod == "fp8")
    #expect(config.usesMLA)
  }

  @Test("an unknown architecture still parses")
  func unknown() throws {
    let config = try ModelConfig(json: Array(#"{"model_type":"mystery","foo":[1,2]}"#.utf8), path: "config.json")
    #expect(config.modelType == "mystery")
    #expect(config.hiddenSize == nil)
  }

  @Test("a known field with the wrong type is an error naming the field")
  func wrongType() {
    do {
      _ = try ModelConfig(json: Array(#"{"hidden_size":"7168"}"#.utf8), path: "config.json")
      Issue.record("expected an error")
    } catch {
      #expect("\(error)".contains("hidden_size"))
    }
    #expect(throws: CheckpointError.self) { try ModelConfig(json: Array(#"{"rope_scaling":{"factor":"x"}}"#.utf8), path: "c") }
    #expect(throws: CheckpointError.self) { try ModelConfig(json: Array("not json".utf8), path: "c") }
  }
}

@Suite("Tensor names and globs") struct TensorNameTests {
  @Test("recognises DeepSeek routed experts, shared experts and the router")
  func deepseek() {
    let expert = TensorName("model.layers.3.mlp.experts.17.gate_proj.weight_scale_inv")
    #expect(expert.layer == 3)
    #expect(expert.expert == 17)
    #expect(expert.expertPattern == "model.layers.3.mlp.experts.*.gate_proj.weight_scale_inv")
    #expect(TensorName("model.layers.3.mlp.shared_experts.up_proj.weight").isSharedExpert)
    #expect(TensorName("model.layers.3.mlp.gate.e_score_correction_bias").isRouter)
    #expect(!TensorName("model.layers.0.mlp.gate_proj.weight").isRouter)
    #expect(TensorName("model.layers.1.block_sparse_moe.experts.2.w1.weight").expert == 2)
  }

  @Test("matches shell-style globs across dots", arguments: [
    ("*.experts.*", "model.layers.3.mlp.experts.1.up_proj.weight", true),
    ("model.layers.[0-2].*", "model.layers.1.self_attn.o_proj.weight", true),
    ("model.layers.[0-2].*", "model.layers.3.self_attn.o_proj.weight", false),
    ("*norm*", "model.norm.weight", true),
    ("lm_head.weight", "lm_head.weight", true),
    ("lm_head", "lm_head.weight", false),
    ("*.?_proj.*", "a.q_proj.weight", true),
  ])
  func globs(pattern: String, name: String, expected: Bool) {
    #expect(Glob(pattern).matches(name) == expected)
  }
}


@Suite("Opening the samples") struct SampleCheckpointTests {
  @Test("the BF16 sample resolves every tensor through its index")
  func bf16Sample() throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3"))
    #expect(checkpoint.files.count == 2)
    #expect(checkpoint.warnings.isEmpty)
    #expect(checkpoint.config?.modelType == "deepseek_v3")
    let summary = CheckpointSummary(checkpoint)
    #expect(summary.layers.filter { $0.kind == .moe }.count == 3)
    #expect(summary.mtpLayerIndices == [4])
    #expect(summary.quantization.isEmpty)
    #expect(try checkpoint.sidecarFiles().contains("tokenizer.json"))
  }

  @Test("the FP8 sample is detected as 128x128 block FP8, with scales possibly in other files")
  func fp8Sample() throws {
    let checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3-fp8"))
    let summary = CheckpointSummary(checkpoint)
    #expect(summary.quantization.map(\.storage) == [.fp8Block])
    let groups = WeightGrouping.groups(of: checkpoint.entries).filter { $0.storage == .fp8Block }
    let split = groups.filter { group in
      checkpoint.location(of: group.parts["weight"]!)?.fileIndex != checkpoint.location(of: group.parts["weight_scale_inv"]!)?.fileIndex
    }
    #expect(!split.isEmpty, "the sample must have a weight whose scale lives in another file")
    #expect(summary.parameterCount == CheckpointSummary(try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3"))).parameterCount)
  }
}
