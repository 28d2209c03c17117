import GGML
import SafeTensors
import TensorCore
import TestSupport
import Testing

import Checkpoint
@testable import WeightFormats

/// The grouping skips, for a whole checkpoint, the formats whose `mayClaim(amongLeaves:)` rules them out
/// (issue 16: 30 formats asked per module made `inspect` of a 671B layout slow). Its plain twin offers
/// every module to every format; both must give the same groups, in the same order.
@Suite("weight grouping: skipping formats a checkpoint cannot hold")
struct GroupingTwinTests {
  /// One module of every registered layout (names, dtypes and shapes its `claim` recognises), plus
  /// plain tensors and near-misses (a companion with the wrong dtype, a lone scale).
  static let modules: [[(leaf: String, dtype: DType, shape: [Int])]] = [
    [("weight", .float8E4M3FN, [256, 256]), ("weight_scale_inv", .float32, [2, 2])],
    [("weight", .float8E4M3FN, [64, 64]), ("weight_scale", .bfloat16, [64, 1]), ("input_scale", .float32, [1])],
    [("weight", .float8E4M3FN, [256, 256]), ("scale", .float8E8M0FNU, [2, 2])],
    [("weight", .int8, [4, 32]), ("scale", .float8E8M0FNU, [4, 2])],
    [("weight_packed", .int32, [4, 4]), ("weight_scale", .bfloat16, [4, 1]), ("weight_shape", .int32, [2])],
    [("weight_packed", .uint8, [4, 16]), ("weight_scale", .float8E4M3FN, [4, 2]), ("weight_global_scale", .float32, [1])],
    [("weight_packed", .uint8, [4, 16]), ("weight_scale", .uint8, [4, 1])],
    [("qweight", .int32, [4, 8]), ("qzeros", .int32, [1, 1]), ("scales", .float16, [1, 8]), ("g_idx", .int32, [32])],
    [("weight", .uint32, [8, 4]), ("scales", .bfloat16, [8, 1]), ("biases", .bfloat16, [8, 1])],
    [("weight", .uint8, [4, 16]), ("weight_scale", .float8E4M3FN, [4, 2]), ("weight_scale_2", .float32, [1]), ("input_scale", .float32, [1])],
    [("gate_up_proj_blocks", .uint8, [2, 4, 1, 16]), ("gate_up_proj_scales", .uint8, [2, 4, 1]), ("gate_up_proj_bias", .bfloat16, [2, 4])],
    [("weight:q4_K", .uint8, [2, 144])],
    [("weight:q8_0", .uint8, [2, 34])],
    [("weight", .bfloat16, [8, 8]), ("bias", .bfloat16, [8])],
    [("weight", .float8E4M3FN, [8, 8]), ("weight_scale_inv", .int8, [1, 1])],
    [("weight_scale_inv", .float32, [1, 1])],
    [("weight", .uint8, [4, 16]), ("weight_scale_2", .float32, [1])],
  ]

  static func entries(_ modules: [Int]) -> [TensorEntry] {
    var entries: [TensorEntry] = []
    var offset = 0
    for m in modules {
      for tensor in Self.modules[m] {
        let bytes = ByteCount.of(tensor.dtype, shape: tensor.shape)!
        entries.append(
          TensorEntry(
            name: "model.layers.\(m).mlp.proj.\(tensor.leaf)", dtype: tensor.dtype, shape: tensor.shape,
            dataOffsets: offset..<(offset + bytes))!)
        offset += bytes
      }
    }
    return entries
  }

  /// What identifies a group: its name, layout and parts, in order.
  static func groups(_ entries: [TensorEntry], askingEveryFormat: Bool) -> [String] {
    var out: [String] = []
    WeightGrouping.forEachGroup(of: entries, askingEveryFormat: askingEveryFormat) { group in
      out.append("\(group.modulePath) \(group.storage) \(group.parts.sorted { $0.key < $1.key })")
    }
    return out
  }

  @Test("every layout alone, all together and every pair: the same groups as offering every module to every format")
  func skippingFormatsMatchesAskingEveryFormat() {
    var checkpoints = Self.modules.indices.map { [$0] } + [Array(Self.modules.indices)]
    for a in Self.modules.indices { for b in Self.modules.indices where a < b { checkpoints.append([a, b]) } }
    for checkpoint in checkpoints {
      let entries = Self.entries(checkpoint)
      #expect(
        Self.groups(entries, askingEveryFormat: false) == Self.groups(entries, askingEveryFormat: true), "modules \(checkpoint)")
    }
  }

  @Test("the corpus exercises every layout but the ggml types it does not list")
  func corpusCoversEveryLayout() {
    let found = Set(WeightGrouping.groups(of: Self.entries(Array(Self.modules.indices))).map(\.storage))
    let expected = Set(WeightFormats.all.map(\.storage).filter { !$0.rawValue.hasPrefix("ggml-") }).union([.ggml(.q4_K), .ggml(.q8_0)])
    #expect(found == expected)
  }

  @Test("the samples: the same groups as offering every module to every format", arguments: [
    "tiny-deepseek-v3", "tiny-deepseek-v3-fp8", "tiny-deepseek-v4", "tiny-gpt-oss", "tiny-kimi-k2.5", "tiny-qwen3.5-moe-fp8",
  ])
  func samplesMatchAskingEveryFormat(sample: String) throws {
    let entries = try Checkpoint.open(TestPaths.sample(sample)).entries
    #expect(Self.groups(entries, askingEveryFormat: false) == Self.groups(entries, askingEveryFormat: true))
  }
}
