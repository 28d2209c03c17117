import GGML

/// llama.cpp's `llama_ftype`: the preset a GGUF was quantized with, written as `general.file_type`, with
/// llama-quantize's names (`tools/quantize/quantize.cpp`, `QUANT_OPTIONS`). Only presets whose every tensor
/// choice is a type Smelt can write are listed.
public enum LlamaFileType: UInt32, Sendable, CaseIterable {
  case allF32 = 0
  case mostlyF16 = 1
  case mostlyQ4_0 = 2
  case mostlyQ4_1 = 3
  case mostlyQ8_0 = 7
  case mostlyQ5_0 = 8
  case mostlyQ5_1 = 9
  case mostlyQ2_K = 10
  case mostlyQ3_K_S = 11
  case mostlyQ3_K_M = 12
  case mostlyQ3_K_L = 13
  case mostlyQ4_K_S = 14
  case mostlyQ4_K_M = 15
  case mostlyQ5_K_S = 16
  case mostlyQ5_K_M = 17
  case mostlyQ6_K = 18
  case mostlyQ2_K_S = 21
  case mostlyIQ4_NL = 25
  case mostlyBF16 = 32
  case mostlyMXFP4_MOE = 38

  /// llama-quantize's name for the preset (`Q4_K_M`, `MXFP4_MOE`, `F16`).
  public var name: String {
    switch self {
    case .allF32: "F32"
    case .mostlyF16: "F16"
    case .mostlyQ4_0: "Q4_0"
    case .mostlyQ4_1: "Q4_1"
    case .mostlyQ8_0: "Q8_0"
    case .mostlyQ5_0: "Q5_0"
    case .mostlyQ5_1: "Q5_1"
    case .mostlyQ2_K: "Q2_K"
    case .mostlyQ3_K_S: "Q3_K_S"
    case .mostlyQ3_K_M: "Q3_K_M"
    case .mostlyQ3_K_L: "Q3_K_L"
    case .mostlyQ4_K_S: "Q4_K_S"
    case .mostlyQ4_K_M: "Q4_K_M"
    case .mostlyQ5_K_S: "Q5_K_S"
    case .mostlyQ5_K_M: "Q5_K_M"
    case .mostlyQ6_K: "Q6_K"
    case .mostlyQ2_K_S: "Q2_K_S"
    case .mostlyIQ4_NL: "IQ4_NL"
    case .mostlyBF16: "BF16"
    case .mostlyMXFP4_MOE: "MXFP4_MOE"
    }
  }

  /// Whether llama.cpp writes this preset with `convert_hf_to_gguf.py --outtype` alone (F32, F16, BF16); the others
  /// are llama-quantize's output of the converter's F32 file.
  public var isConverterOutput: Bool { self == .allF32 || self == .mostlyF16 || self == .mostlyBF16 }

  /// A tensor's `ne` as llama-quantize writes it: gguf.cpp keeps `ggml_n_dims` dimensions, dropping trailing 1s
  /// (the converter's `[1, H]` shared-expert gate, `ne = {H, 1}`, becomes `{H}`).
  public static func writtenDimensions(_ dimensions: [Int]) -> [Int] {
    var trimmed = dimensions
    while trimmed.count > 1, trimmed.last == 1 { trimmed.removeLast() }
    return trimmed
  }

  /// The preset named `name`, case-insensitively, including llama-quantize's aliases `Q3_K`, `Q4_K`, `Q5_K`.
  public init?(name: String) {
    let upper = name.uppercased()
    let aliases: [String: LlamaFileType] = ["Q3_K": .mostlyQ3_K_M, "Q4_K": .mostlyQ4_K_M, "Q5_K": .mostlyQ5_K_M]
    if let alias = aliases[upper] {
      self = alias
      return
    }
    guard let match = LlamaFileType.allCases.first(where: { $0.name == upper }) else { return nil }
    self = match
  }

  /// `llama_ftype_get_default_type`: the type of every quantizable tensor before the per-tensor rules.
  public var defaultType: GGMLType {
    switch self {
    case .allF32: .f32
    case .mostlyF16: .f16
    case .mostlyBF16: .bf16
    case .mostlyQ4_0: .q4_0
    case .mostlyQ4_1: .q4_1
    case .mostlyQ5_0: .q5_0
    case .mostlyQ5_1: .q5_1
    case .mostlyQ8_0: .q8_0
    case .mostlyMXFP4_MOE: .mxfp4
    case .mostlyQ2_K_S, .mostlyQ2_K: .q2_K
    case .mostlyQ3_K_S, .mostlyQ3_K_M, .mostlyQ3_K_L: .q3_K
    case .mostlyQ4_K_S, .mostlyQ4_K_M: .q4_K
    case .mostlyQ5_K_S, .mostlyQ5_K_M: .q5_K
    case .mostlyQ6_K: .q6_K
    case .mostlyIQ4_NL: .iq4_nl
    }
  }
}

/// A port of llama-quantize's per-tensor type choice (`src/llama-quant.cpp`: `tensor_allows_quantization`,
/// `llama_tensor_get_type`, `llama_tensor_get_type_impl`, `tensor_type_fallback`, `tensor_requires_imatrix`)
/// as a pure function of the tensor list, the preset and the model's hyperparameters.
public enum LlamaQuantize {
  /// What the rules read of the model (`llama_hparams` and the architecture).
  public struct Model: Sendable, Equatable {
    /// `general.architecture` (`deepseek2`, `falcon`, ...).
    public var architecture: String
    /// `{arch}.expert_count` (0 for a dense model).
    public var expertCount: Int
    /// `{arch}.attention.head_count` and `head_count_kv` of layer 0 (`n_gqa()` is their ratio).
    public var headCount: Int
    public var headCountKV: Int
    /// `{arch}.block_count`, MTP blocks included (`n_layer_all`).
    public var blockCount: Int
    /// llama.cpp's `LLM_TYPE_70B` (a rule for Llama-2-70B's attn_v); false for every MoE model.
    public var is70B = false

    public init(architecture: String, expertCount: Int, headCount: Int, headCountKV: Int, blockCount: Int) {
      self.architecture = architecture
      self.expertCount = expertCount
      self.headCount = headCount
      self.headCountKV = headCountKV
      self.blockCount = blockCount
    }

    var gqa: Int { headCountKV > 0 ? headCount / headCountKV : 0 }
    var isFalcon: Bool { architecture == "falcon" }
  }

  /// One tensor as llama-quantize sees it in its input GGUF.
  public struct Tensor: Sendable, Equatable {
    public var name: String
    /// ggml order (`ne`).
    public var dimensions: [Int]
    /// The type in the input file (llama.cpp's reference pipeline quantizes from an F32 GGUF).
    public var type: GGMLType

    public init(name: String, dimensions: [Int], type: GGMLType) {
      self.name = name
      self.dimensions = dimensions
      self.type = type
    }

    /// `ggml_n_dims`.
    var dimensionCount: Int { GGUFDimensions.count(dimensions) }
    func ne(_ index: Int) -> Int { index < dimensions.count ? dimensions[index] : 1 }
  }

  /// What was decided for one tensor.
  public struct Choice: Sendable, Equatable {
    public var type: GGMLType
    /// The rule's type did not fit the row length and llama.cpp's fallback was used (e.g. Q4_K → Q5_0).
    public var fellBack: Bool
    /// llama-quantize refuses to write this tensor without an importance matrix (its `--dry-run` only warns):
    /// callers that write must check `LlamaQuantize.missingImportance`.
    public var requiresImportance: Bool
    /// A `--rule`/`--tensor-type` override chose the type.
    public var overridden: Bool
  }

  public enum Failure: Error, Equatable, CustomStringConvertible {
    /// A name the layer-aware rules need as `blk.N.` does not parse, or N is out of range.
    case badLayer(tensor: String, blockCount: Int)
    /// The preset needs an importance matrix for this tensor (Q2_K_S).
    case importanceRequired(tensor: String, type: GGMLType)

    public var description: String {
      switch self {
      case .badLayer(let tensor, let blockCount):
        "cannot determine the layer of tensor '\(tensor)' (expected blk.N. with N < \(blockCount))"
      case .importanceRequired(let tensor, let type):
        "\(tensor) would be \(type), which llama-quantize only writes with an importance matrix; pass --imatrix"
      }
    }
  }

  /// The first tensor that needs an importance matrix when none is given, as llama-quantize's error.
  public static func missingImportance(_ choices: [Choice], names: [String], hasImportance: Bool) -> Failure? {
    guard !hasImportance, let index = choices.firstIndex(where: \.requiresImportance) else { return nil }
    return .importanceRequired(tensor: names[index], type: choices[index].type)
  }

  /// The order llama-quantize processes and writes tensors in (`llama_model_loader::weights_map`'s
  /// comparer): tensors outside `blk.N.` first, then by layer number, each group by name (bytewise).
  public static func processingOrder(_ names: [String]) -> [String] {
    names.sorted { a, b in
      let la = layerIndex(a) ?? -1
      let lb = layerIndex(b) ?? -1
      return la != lb ? la < lb : Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
    }
  }

  /// The target type of every tensor, in the order given (which must be `processingOrder`: the per-category
  /// counters depend on it).
  ///
  /// - Parameters:
  ///   - override: `--tensor-type` / `--rule`: a type for a tensor name, or nil. Consulted only for tensors the
  ///     preset quantizes, as llama-quantize does; the shape fallback still applies.
  ///   - hasImportance: whether an importance matrix is given (changes a few rules).
  public static func choose(
    _ tensors: [Tensor], preset: LlamaFileType, model: Model, hasImportance: Bool = false,
    override: (String) -> GGMLType? = { _ in nil }
  ) throws(Failure) -> [Choice] {
    var state = State(model: model, hasImportance: hasImportance)
    for tensor in tensors {
      let category = Category(tensor.name)
      if category.isAttentionV { state.attentionVCount += 1 }
      if category == .output { state.tiedEmbeddings = false }
    }
    state.ffnDownCount = model.blockCount
    state.ffnGateCount = model.blockCount
    state.ffnUpCount = model.blockCount

    var choices: [Choice] = []
    for tensor in tensors {
      guard allowsQuantization(tensor, architecture: model.architecture) else {
        choices.append(Choice(type: tensor.type, fellBack: false, requiresImportance: false, overridden: false))
        continue
      }
      let category = Category(tensor.name)
      var type = preset.defaultType
      var fellBack = false
      var overridden = false
      if type.isQuantized {
        if let manual = override(tensor.name) {
          type = manual
          overridden = true
        } else {
          type = try state.impl(type, tensor: tensor, preset: preset, category: category)
        }
        (type, fellBack) = fallback(type, rowLength: tensor.ne(0))
      }
      let requires = requiresImportance(tensor.name, type: type, preset: preset)
      choices.append(Choice(type: type, fellBack: fellBack, requiresImportance: requires, overridden: overridden))
    }
    return choices
  }

  // MARK: the rules

  /// `tensor_category`.
  enum Category: Equatable {
    case tokenEmbedding, attentionQ, attentionV, attentionK, attentionQKV, attentionKVB, attentionOutput
    case ffnUp, ffnGate, ffnDown, output, other

    init(_ name: String) {
      let name = LlamaTensorName(name)
      if name == "output.weight" {
        self = .output
      } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        self = .tokenEmbedding
      } else if name.contains("attn_qkv.weight") {
        self = .attentionQKV
      } else if name.contains("attn_kv_b.weight") {
        self = .attentionKVB
      } else if name.contains("attn_v.weight") {
        self = .attentionV
      } else if name.contains("attn_k.weight") {
        self = .attentionK
      } else if name.contains("attn_q.weight") {
        self = .attentionQ
      } else if name.contains("attn_output.weight") {
        self = .attentionOutput
      } else if name.contains("ffn_up") {
        self = .ffnUp
      } else if name.contains("ffn_gate") {
        self = .ffnGate
      } else if name.contains("ffn_down") {
        self = .ffnDown
      } else {
        self = .other
      }
    }

    /// `category_is_attn_v`: the tensors most sensitive to quantization.
    var isAttentionV: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
  }

  /// `tensor_allows_quantization` with llama-quantize's default parameters (output tensor quantized, not
  /// copy-only).
  static func allowsQuantization(_ tensor: Tensor, architecture: String) -> Bool {
    guard tensor.dimensionCount >= 2 else { return false }
    let name = LlamaTensorName(tensor.name)
    guard name.hasSuffix("weight") else { return false }
    let excluded = [
      "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
      "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
      "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight",
      "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
      "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
      "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_",
      ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    ]
    if excluded.contains(where: { name.contains($0) }) { return false }
    // LLM_TENSOR_POS_EMBD / LLM_TENSOR_TOKEN_TYPES (BERT): "position_embd.weight", "token_types.weight".
    if name == "position_embd.weight" || name == "token_types.weight" { return false }
    if architecture == "glm5-next" {
      let glm = [
        "hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate", "indexer_compressor_ape",
        "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight", "ssm_g_b.weight", "ssm_beta.weight", "attn_kv_a_mqa.weight",
        "attn_k_b.weight", "attn_v_b.weight",
      ]
      if glm.contains(where: { name.contains($0) }) { return false }
    }
    return true
  }

  /// `tensor_type_fallback`: a 256-block type on a row that is not whole super-blocks becomes the 32-block
  /// type llama.cpp picks (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, Q2_K/Q3_K → Q4_0); F16 if even that does
  /// not fit.
  static func fallback(_ type: GGMLType, rowLength: Int) -> (GGMLType, Bool) {
    guard rowLength % type.blockSize != 0 else { return (type, false) }
    var result: GGMLType
    switch type {
    case .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs: result = .iq4_nl
    case .q2_0, .q2_K, .q3_K, .tq1_0, .tq2_0: result = .q4_0
    case .q4_K: result = .q5_0
    case .q5_K: result = .q5_1
    case .q6_K: result = .q8_0
    default: result = type
    }
    if rowLength % result.blockSize != 0 { result = .f16 }
    return (result, true)
  }

  /// `tensor_requires_imatrix` for the types Smelt writes: only Q2_K inside a Q2_K_S file.
  static func requiresImportance(_ name: String, type: GGMLType, preset: LlamaFileType) -> Bool {
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" || name == "output.weight" { return false }
    return type == .q2_K && preset == .mostlyQ2_K_S
  }

  /// `blk.N.` → N (`sscanf("blk.%d.")`: digits after `blk.` and a dot after them).
  static func layerIndex(_ name: String) -> Int? {
    guard name.hasPrefix("blk.") else { return nil }
    let rest = name.dropFirst(4)
    var digits = rest.prefix { $0.isASCII && $0.isNumber }
    if digits.isEmpty, rest.first == "-" || rest.first == "+" {
      digits = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
      guard !digits.isEmpty, let value = Int(digits) else { return nil }
      return rest.first == "-" ? -value : value
    }
    return Int(digits)
  }

  /// `quantize_state_impl`: the counters the rules advance as tensors go by.
  struct State {
    let model: Model
    let hasImportance: Bool
    var attentionVCount = 0
    var ffnDownCount = 0
    var ffnGateCount = 0
    var ffnUpCount = 0
    var attentionVIndex = 0
    var ffnDownIndex = 0
    var ffnGateIndex = 0
    var ffnUpIndex = 0
    var tiedEmbeddings = true

    init(model: Model, hasImportance: Bool) {
      self.model = model
      self.hasImportance = hasImportance
    }

    static func useMoreBits(_ layer: Int, _ layers: Int) -> Bool {
      layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
    }

    /// `layer_info`: with experts, the layer comes from the name (experts are not consecutive in general).
    func layer(_ counter: Int, _ count: Int, _ name: String) throws(Failure) -> (Int, Int) {
      guard max(1, model.expertCount) > 1 else { return (counter, count) }
      guard let layer = LlamaQuantize.layerIndex(name), layer >= 0, layer < count else {
        throw .badLayer(tensor: name, blockCount: count)
      }
      return (layer, count)
    }

    /// `llama_tensor_get_type_impl` for the presets Smelt supports (the IQ1/IQ2/IQ3 branches cannot be
    /// reached from them and are left out).
    mutating func impl(_ start: GGMLType, tensor: Tensor, preset ftype: LlamaFileType, category: Category) throws(Failure)
      -> GGMLType
    {
      var newType = start
      let name = tensor.name
      if category == .output || (tiedEmbeddings && category == .tokenEmbedding) {
        let nx = tensor.ne(0)
        if ftype == .mostlyMXFP4_MOE {
          newType = .q8_0
        } else if model.isFalcon || nx % newType.blockSize != 0 {
          newType = .q8_0
        } else if newType != .q8_0 {
          newType = .q6_K
        }
      } else if ftype == .mostlyMXFP4_MOE {
        // llama.cpp special-cases bailingmoe3's 3-D MLA projections; for every other architecture any 3-D
        // tensor (experts, and deepseek2's attn_k_b / attn_v_b) becomes MXFP4.
        let isBailingExpert = model.architecture == "bailingmoe3" && (category == .ffnUp || category == .ffnGate || category == .ffnDown)
        newType = tensor.ne(2) > 1 && (model.architecture != "bailingmoe3" || isBailingExpert) ? .mxfp4 : .q8_0
      } else if category == .tokenEmbedding {
        // Only the IQ1/IQ2/IQ3 and ternary presets change the token embedding.
      } else if category.isAttentionV {
        switch ftype {
        case .mostlyQ2_K: newType = model.gqa >= 4 ? .q4_K : .q3_K
        case .mostlyQ2_K_S where model.gqa >= 4: newType = .q4_K
        case .mostlyQ3_K_M: newType = attentionVIndex < 2 ? .q5_K : .q4_K
        case .mostlyQ3_K_L: newType = .q5_K
        case .mostlyIQ4_NL where model.gqa >= 4: newType = .q5_K
        case .mostlyQ4_K_M, .mostlyQ5_K_M:
          if Self.useMoreBits(attentionVIndex, attentionVCount) { newType = .q6_K }
        case .mostlyQ4_K_S where attentionVIndex < 4: newType = .q5_K
        default: break
        }
        if model.is70B, newType == .q3_K || newType == .q4_K { newType = .q5_K }
        if model.expertCount == 8 { newType = .q8_0 }
        attentionVIndex += 1
      } else if category == .attentionK {
        if model.expertCount == 8 { newType = .q8_0 }
      } else if category == .attentionQ {
        // Only IQ3 presets.
      } else if category == .ffnDown {
        let (layer, layers) = try self.layer(ffnDownIndex, ffnDownCount, name)
        switch ftype {
        case .mostlyQ2_K: newType = .q3_K
        case .mostlyQ2_K_S:
          if layer < layers / 8 { newType = .q4_K }
        case .mostlyQ3_K_M:
          newType = layer < layers / 16 ? .q5_K : (!model.isFalcon || Self.useMoreBits(layer, layers)) ? .q4_K : .q3_K
        case .mostlyQ3_K_L: newType = model.isFalcon ? .q4_K : .q5_K
        case .mostlyQ4_K_M:
          if model.isFalcon {
            newType = layer < layers / 16 ? .q6_K : Self.useMoreBits(layer, layers) ? .q5_K : .q4_K
          } else if Self.useMoreBits(layer, layers) {
            newType = .q6_K
          }
        case .mostlyIQ4_NL where layer < layers / 8 && !hasImportance: newType = .q5_K
        case .mostlyQ5_K_M where Self.useMoreBits(layer, layers): newType = .q6_K
        case .mostlyQ4_K_S where !model.isFalcon && layer < layers / 8: newType = .q5_K
        case .mostlyQ4_0 where hasImportance && layer < layers / 8: newType = .q4_1
        case .mostlyQ5_0 where hasImportance && layer < layers / 8: newType = .q5_1
        default: break
        }
        ffnDownIndex += 1
      } else if category == .attentionOutput {
        if !model.isFalcon {
          if model.expertCount == 8 {
            let bumped: Set<LlamaFileType> = [.mostlyQ2_K, .mostlyQ3_K_S, .mostlyQ3_K_M, .mostlyIQ4_NL, .mostlyQ4_K_S, .mostlyQ4_K_M]
            if bumped.contains(ftype) { newType = .q5_K }
          } else {
            switch ftype {
            case .mostlyQ2_K: newType = .q3_K
            case .mostlyQ3_K_M: newType = .q4_K
            case .mostlyQ3_K_L: newType = .q5_K
            default: break
            }
          }
        } else if ftype == .mostlyQ3_K_L {
          newType = .q4_K
        }
      } else if category == .attentionQKV {
        switch ftype {
        case .mostlyQ3_K_M, .mostlyQ3_K_L: newType = .q4_K
        case .mostlyQ4_K_M: newType = .q5_K
        case .mostlyQ5_K_M: newType = .q6_K
        default: break
        }
      } else if category == .ffnGate {
        _ = try layer(ffnGateIndex, ffnGateCount, name)
        ffnGateIndex += 1
      } else if category == .ffnUp {
        _ = try layer(ffnUpIndex, ffnUpCount, name)
        ffnUpIndex += 1
      }
      return newType
    }
  }
}

/// A tensor name as UTF-8 bytes, for the rules' many substring tests (`std::string::find` in llama.cpp);
/// the standard library's `String.contains(_:)` is an order of magnitude slower for this.
struct LlamaTensorName {
  let bytes: [UInt8]

  init(_ name: String) { bytes = Array(name.utf8) }

  func contains(_ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard !n.isEmpty, n.count <= bytes.count else { return n.isEmpty }
    var start = 0
    while start + n.count <= bytes.count {
      var match = true
      for k in 0..<n.count where bytes[start + k] != n[k] {
        match = false
        break
      }
      if match { return true }
      start += 1
    }
    return false
  }

  func hasSuffix(_ suffix: String) -> Bool {
    let s = Array(suffix.utf8)
    return s.count <= bytes.count && Array(bytes[(bytes.count - s.count)...]) == s
  }

  static func == (name: LlamaTensorName, text: String) -> Bool { name.bytes.elementsEqual(text.utf8) }
}

/// `ggml_n_dims` on a dimension list.
enum GGUFDimensions {
  static func count(_ dimensions: [Int]) -> Int {
    var n = dimensions.count
    while n > 1, dimensions[n - 1] == 1 { n -= 1 }
    return max(n, 1)
  }
}
