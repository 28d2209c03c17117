import GGUF
import JSON

/// The `tokenizer.*` metadata llama.cpp needs, read from a Hugging Face `tokenizer.json` (+
/// `tokenizer_config.json`, `config.json`, `chat_template.jinja`) the way convert_hf_to_gguf.py does for a
/// GPT-2-style BPE model (`_set_vocab_gpt2`: `get_vocab_base` and gguf-py's `SpecialVocab`).
///
/// Differences from the Python converter, by design: the pre-tokenizer name is given (the converter hashes
/// the tokenization of a probe text, which needs the tokenizer itself); an added token that is not
/// `normalized` is taken as written (the converter round-trips it through `decode(encode())`, which is the
/// identity for every DeepSeek token); TemplateProcessing `pair` templates (the `sep` flag) are not parsed; a special
/// token id at or past `vocab_size` is dropped (gguf-py's `SpecialVocab`, given no vocabulary size by the converter,
/// would write an id the token list lacks).
public struct TokenizerMetadata: Sendable, Equatable {
  /// llama.cpp's `llama_token_type`.
  public enum TokenType: Int32, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
  }

  public var model: String
  public var pre: String?
  public var tokens: [String]
  public var tokenTypes: [TokenType]
  public var merges: [String]
  /// `(kind, id)` in the order gguf-py adds them: kinds `bos`, `eos`, `unk`, `sep`, `pad`, `cls`, `mask`, `eot`.
  public var specialTokenIDs: [(kind: String, id: Int)]
  /// `(kind, flag)`: `add_bos_token`, `add_eos_token`, ...
  public var addSpecialTokens: [(kind: String, add: Bool)]
  public var chatTemplate: String?
  /// Named templates beside the default (`tokenizer.chat_template.<name>`).
  public var namedChatTemplates: [(name: String, template: String)]
  public var normalizerLowercase: Bool?
  public var normalizerStripAccents: Bool?

  public static func == (a: TokenizerMetadata, b: TokenizerMetadata) -> Bool {
    a.model == b.model && a.pre == b.pre && a.tokens == b.tokens && a.tokenTypes == b.tokenTypes && a.merges == b.merges
      && a.specialTokenIDs.map { "\($0.kind)=\($0.id)" } == b.specialTokenIDs.map { "\($0.kind)=\($0.id)" }
      && a.addSpecialTokens.map { "\($0.kind)=\($0.add)" } == b.addSpecialTokens.map { "\($0.kind)=\($0.add)" }
      && a.chatTemplate == b.chatTemplate && a.namedChatTemplates.map { $0.name + $0.template } == b.namedChatTemplates.map { $0.name + $0.template }
      && a.normalizerLowercase == b.normalizerLowercase && a.normalizerStripAccents == b.normalizerStripAccents
  }

  /// `tokenizer.ggml.model = "none"`: llama.cpp then makes `vocab_size` placeholder tokens (raw token ids
  /// only, no text in or out).
  public static let none = TokenizerMetadata(
    model: "none", pre: nil, tokens: [], tokenTypes: [], merges: [], specialTokenIDs: [], addSpecialTokens: [],
    chatTemplate: nil, namedChatTemplates: [], normalizerLowercase: nil, normalizerStripAccents: nil)

  /// A tokenizer directory's files, already read (nil when absent).
  public struct Files: Sendable {
    public var tokenizerJSON: [UInt8]
    public var tokenizerConfigJSON: [UInt8]?
    public var configJSON: [UInt8]?
    public var chatTemplateJinja: String?

    public init(tokenizerJSON: [UInt8], tokenizerConfigJSON: [UInt8]? = nil, configJSON: [UInt8]? = nil, chatTemplateJinja: String? = nil) {
      self.tokenizerJSON = tokenizerJSON
      self.tokenizerConfigJSON = tokenizerConfigJSON
      self.configJSON = configJSON
      self.chatTemplateJinja = chatTemplateJinja
    }
  }

  public enum Failure: Error, Equatable, CustomStringConvertible {
    case invalidJSON(file: String, reason: String)
    case notBPE(found: String)
    case malformed(file: String, field: String, reason: String)
    case tokenIDOutOfRange(token: String, id: Int, vocabularySize: Int)

    public var description: String {
      switch self {
      case .invalidJSON(let file, let reason): "\(file) is not valid JSON: \(reason)"
      case .notBPE(let found): "tokenizer.json has model type '\(found)'; Smelt writes GGUF vocabularies for BPE (gpt2) tokenizers only"
      case .malformed(let file, let field, let reason): "\(file): \(field) \(reason)"
      case .tokenIDOutOfRange(let token, let id, let size): "token '\(token)' has id \(id), outside the vocabulary of \(size) (config.json vocab_size)"
      }
    }
  }

  /// Builds the metadata of a BPE tokenizer.
  /// - Parameters:
  ///   - vocabularySize: `config.json`'s `vocab_size` (ids the tokenizer lacks become `[PAD<i>]`, UNUSED).
  ///   - pre: the llama.cpp pre-tokenizer name (`deepseek-v3` for the DeepSeek-V3 family).
  ///   - architectureSpecialTokens: `(kind, added-token content)` the architecture's converter sets after the
  ///     tokenizer's own (`_set_special_token`: a kind already set keeps its id; a content the tokenizer does not
  ///     have is skipped).
  public init(
    files: Files, vocabularySize: Int?, pre: String, architectureSpecialTokens: [(kind: String, content: String)] = []
  ) throws(Failure) {
    let tokenizer = try Self.object(files.tokenizerJSON, file: "tokenizer.json")
    let config = try files.tokenizerConfigJSON.map { bytes throws(Failure) in try Self.object(bytes, file: "tokenizer_config.json") }
    let modelConfig = try files.configJSON.map { bytes throws(Failure) in try Self.object(bytes, file: "config.json") }
    guard let bpe = tokenizer["model"]?.objectValue else {
      throw .malformed(file: "tokenizer.json", field: "model", reason: "is missing")
    }
    let kind = bpe["type"]?.stringValue ?? "BPE"
    guard kind == "BPE" else { throw .notBPE(found: kind) }

    // get_vocab_base: tokenizer.vocab is the model vocabulary plus the added tokens.
    var byID: [Int: String] = [:]
    guard let vocabulary = bpe["vocab"]?.objectValue else {
      throw .malformed(file: "tokenizer.json", field: "model.vocab", reason: "is missing or not an object")
    }
    for (token, value) in vocabulary {
      guard let id = value.intValue, id >= 0 else {
        throw .malformed(file: "tokenizer.json", field: "model.vocab[\(token)]", reason: "is not a token id")
      }
      byID[id] = token
    }
    struct Added {
      var id: Int
      var content: String
      var special: Bool
      var normalized: Bool
    }
    var added: [Added] = []
    for (index, entry) in (tokenizer["added_tokens"]?.arrayValue ?? []).enumerated() {
      guard let id = entry["id"]?.intValue, let content = entry["content"]?.stringValue else {
        throw .malformed(file: "tokenizer.json", field: "added_tokens[\(index)]", reason: "needs an integer id and a string content")
      }
      added.append(Added(id: id, content: content, special: entry["special"]?.boolValue ?? false, normalized: entry["normalized"]?.boolValue ?? true))
      byID[id] = content
    }
    let maximumID = byID.keys.max() ?? -1
    let size = vocabularySize ?? (maximumID + 1)
    if maximumID >= size, let id = byID.keys.first(where: { $0 >= size }) {
      throw .tokenIDOutOfRange(token: byID[id] ?? "", id: id, vocabularySize: size)
    }
    let addedByContent = Dictionary(added.map { ($0.content, $0) }, uniquingKeysWith: { first, _ in first })
    let (tokens, types) = Self.tokenList(size: size, byID: byID) { _, token in
      guard let entry = addedByContent[token] else { return (token, .normal) }
      if entry.special || Self.looksSpecial(token) { return (token, .control) }
      return (token.replacingAll("\u{2581}", with: " "), .userDefined)
    }

    // SpecialVocab: merges, normalizer, post-processor flags, tokenizer_config entries, config.json ids.
    var merges: [String] = []
    if let list = bpe["merges"]?.arrayValue, let first = list.first {
      if first.stringValue != nil {
        merges = try list.enumerated().map { (i, m) throws(Failure) in
          guard let text = m.stringValue else { throw .malformed(file: "tokenizer.json", field: "model.merges[\(i)]", reason: "is not a string") }
          return text
        }
      } else if first.arrayValue != nil {
        merges = try list.enumerated().map { (i, m) throws(Failure) in
          guard let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue else {
            throw .malformed(file: "tokenizer.json", field: "model.merges[\(i)]", reason: "is not a pair of strings")
          }
          // gguf-py encodes a space inside a merge part as U+0120 (chr(ord(' ') + 256)).
          return a.replacingAll(" ", with: "\u{0120}") + " " + b.replacingAll(" ", with: "\u{0120}")
        }
      } else {
        throw .malformed(file: "tokenizer.json", field: "model.merges", reason: "has an unknown format")
      }
    }
    var lowercase: Bool?
    var stripAccents: Bool?
    if let normalizer = tokenizer["normalizer"]?.objectValue { Self.parseNormalizer(normalizer, &lowercase, &stripAccents) }

    var special = SpecialVocabulary(
      tokenizer: tokenizer, config: config, modelConfig: modelConfig, chatTemplateJinja: files.chatTemplateJinja, vocabularySize: size)
    for (kind, content) in architectureSpecialTokens {
      special.set(kind, added.first { $0.content == content }?.id)
    }

    self.model = "gpt2"
    self.pre = pre
    self.tokens = tokens
    self.tokenTypes = types
    self.merges = merges
    self.specialTokenIDs = special.ids
    self.addSpecialTokens = special.addFlags
    self.chatTemplate = special.chatTemplate
    self.namedChatTemplates = special.namedChatTemplates
    self.normalizerLowercase = lowercase
    self.normalizerStripAccents = stripAccents
  }

  init(
    model: String, pre: String?, tokens: [String], tokenTypes: [TokenType], merges: [String],
    specialTokenIDs: [(kind: String, id: Int)], addSpecialTokens: [(kind: String, add: Bool)], chatTemplate: String?,
    namedChatTemplates: [(name: String, template: String)], normalizerLowercase: Bool?, normalizerStripAccents: Bool?
  ) {
    self.model = model
    self.pre = pre
    self.tokens = tokens
    self.tokenTypes = tokenTypes
    self.merges = merges
    self.specialTokenIDs = specialTokenIDs
    self.addSpecialTokens = addSpecialTokens
    self.chatTemplate = chatTemplate
    self.namedChatTemplates = namedChatTemplates
    self.normalizerLowercase = normalizerLowercase
    self.normalizerStripAccents = normalizerStripAccents
  }

  /// The GGUF key-value pairs, in the order convert_hf_to_gguf.py writes them.
  public var keyValues: [GGUFKeyValue] {
    var entries = [GGUFKeyValue("tokenizer.ggml.model", .string(model))]
    guard model != "none" else { return entries }
    if let pre { entries.append(GGUFKeyValue("tokenizer.ggml.pre", .string(pre))) }
    entries.append(GGUFKeyValue("tokenizer.ggml.tokens", .array(.string(tokens))))
    entries.append(GGUFKeyValue("tokenizer.ggml.token_type", .array(.int32(tokenTypes.map(\.rawValue)))))
    if !merges.isEmpty { entries.append(GGUFKeyValue("tokenizer.ggml.merges", .array(.string(merges)))) }
    let idKeys = [
      "bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
      "pad": "padding_token_id", "cls": "cls_token_id", "mask": "mask_token_id", "eot": "eot_token_id",
      "eom": "eom_token_id",
    ]
    for (kind, id) in specialTokenIDs {
      if let key = idKeys[kind] { entries.append(GGUFKeyValue("tokenizer.ggml.\(key)", .uint32(UInt32(id)))) }
    }
    for (kind, add) in addSpecialTokens where ["bos", "eos", "sep"].contains(kind) {
      entries.append(GGUFKeyValue("tokenizer.ggml.add_\(kind)_token", .bool(add)))
    }
    for (name, template) in namedChatTemplates { entries.append(GGUFKeyValue("tokenizer.chat_template.\(name)", .string(template))) }
    if !namedChatTemplates.isEmpty {
      entries.append(GGUFKeyValue("tokenizer.chat_templates", .array(.string(namedChatTemplates.map(\.name)))))
    }
    if let chatTemplate { entries.append(GGUFKeyValue("tokenizer.chat_template", .string(chatTemplate))) }
    if let normalizerLowercase { entries.append(GGUFKeyValue("tokenizer.ggml.normalizer.lowercase", .bool(normalizerLowercase))) }
    if let normalizerStripAccents {
      entries.append(GGUFKeyValue("tokenizer.ggml.normalizer.strip_accents", .bool(normalizerStripAccents)))
    }
    return entries
  }

  /// The token list and types for ids `0..<size`: `classify` gives each present token its spelling and type, an
  /// id without one is `[PAD<id>]` (UNUSED), as the converters fill a vocabulary up to `vocab_size`.
  static func tokenList(size: Int, byID: [Int: String], classify: (Int, String) -> (String, TokenType)) -> ([String], [TokenType]) {
    var tokens: [String] = []
    var types: [TokenType] = []
    tokens.reserveCapacity(size)
    types.reserveCapacity(size)
    for id in 0..<size {
      guard let token = byID[id] else {
        tokens.append("[PAD\(id)]")
        types.append(.unused)
        continue
      }
      let (spelling, type) = classify(id, token)
      tokens.append(spelling)
      types.append(type)
    }
    return (tokens, types)
  }

  /// `does_token_look_special`.
  static func looksSpecial(_ token: String) -> Bool {
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token)
      || (token.hasPrefix("<|") && token.hasSuffix("|>")) || (token.hasPrefix("<｜") && token.hasSuffix("｜>"))
      || (token.hasPrefix("<unused") && token.hasSuffix(">"))
  }

  static func parseNormalizer(_ normalizer: JSONObject, _ lowercase: inout Bool?, _ stripAccents: inout Bool?) {
    switch normalizer["type"]?.stringValue {
    case "Lowercase": lowercase = true
    case "StripAccents": stripAccents = true
    case "BertNormalizer":
      if let flag = normalizer["lowercase"]?.boolValue { lowercase = flag }
      if let flag = normalizer["strip_accents"]?.boolValue { stripAccents = flag }
    case "Sequence":
      for inner in normalizer["normalizers"]?.arrayValue ?? [] {
        if let object = inner.objectValue { parseNormalizer(object, &lowercase, &stripAccents) }
      }
    default: break
    }
  }

  static func object(_ bytes: [UInt8], file: String) throws(Failure) -> JSONObject {
    let value: JSONValue
    do { value = try JSONParser.parse(bytes) } catch { throw .invalidJSON(file: file, reason: "\(error)") }
    guard let object = value.objectValue else { throw .invalidJSON(file: file, reason: "the top level is not an object") }
    return object
  }
}

/// gguf-py's `SpecialVocab` beyond the merges: the special token ids, add-token flags and chat templates, from
/// `tokenizer.json`'s post-processor and added tokens (when there is one), `tokenizer_config.json` and
/// `config.json`, in gguf-py's order (a kind keeps the first id it is given).
struct SpecialVocabulary {
  static let kinds = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]

  let size: Int
  var ids: [(kind: String, id: Int)] = []
  var addFlags: [(kind: String, add: Bool)] = []
  var chatTemplate: String?
  var namedChatTemplates: [(name: String, template: String)] = []

  init(tokenizer: JSONObject?, config: JSONObject?, modelConfig: JSONObject?, chatTemplateJinja: String?, vocabularySize: Int) {
    size = vocabularySize
    func configToken(_ kind: String) -> String? {
      guard let entry = config?["\(kind)_token"] else { return nil }
      return entry.stringValue ?? entry["content"]?.stringValue
    }
    if let processor = tokenizer?["post_processor"]?.objectValue {
      let processors = processor["processors"]?.arrayValue?.compactMap(\.objectValue) ?? [processor]
      for step in processors {
        switch step["type"]?.stringValue {
        case "ByteLevel":
          setDefaultAdd("bos", false)
          setDefaultAdd("eos", false)
        case "RobertaProcessing":
          forceAdd("bos", true)
          forceAdd("eos", true)
          forceAdd("sep", true)
        case "TemplateProcessing":
          let single = step["single"]?.arrayValue ?? []
          if single.count > 1 {
            if let first = single.first?["SpecialToken"]?["id"]?.stringValue {
              forceAdd("bos", first == configToken("bos") || first == configToken("cls"))
            }
            if let last = single.last?["SpecialToken"]?["id"]?.stringValue {
              forceAdd("eos", last == configToken("eos"))
            }
          }
        default: break
        }
      }
    }
    if let config {
      let templateValue = config["chat_template"] ?? chatTemplateJinja.map { JSONValue.string($0) }
      if let text = templateValue?.stringValue {
        chatTemplate = text
      } else if let choices = templateValue?.arrayValue {
        for choice in choices {
          let name = String((choice["name"]?.stringValue ?? "").map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
          guard !name.isEmpty, let template = choice["template"]?.stringValue else { continue }
          if name == "default" { chatTemplate = template } else { namedChatTemplates.append((name, template)) }
        }
      }
      // Without a tokenizer.json there are no added tokens to find the configured contents in (gguf-py's
      // `added_tokens = {}`): only config.json's ids count then.
      let addedTokens = tokenizer?["added_tokens"]?.arrayValue ?? []
      for kind in Self.kinds {
        if let flag = config["add_\(kind)_token"]?.boolValue { setDefaultAdd(kind, flag) }
        guard let content = configToken(kind) else { continue }
        set(kind, addedTokens.first { $0["content"]?.stringValue == content }?["id"]?.intValue)
      }
    }
    if let modelConfig {
      for kind in Self.kinds {
        set(kind, modelConfig["\(kind)_token_id"]?.intValue ?? modelConfig["text_config"]?["\(kind)_token_id"]?.intValue)
      }
    }
  }

  /// `_set_special_token`: an id inside the vocabulary, for a kind that has none yet.
  mutating func set(_ kind: String, _ id: Int?) {
    guard let id, id >= 0, id < size, !ids.contains(where: { $0.kind == kind }) else { return }
    ids.append((kind, id))
  }

  private mutating func setDefaultAdd(_ kind: String, _ value: Bool) {
    if !addFlags.contains(where: { $0.kind == kind }) { addFlags.append((kind, value)) }
  }

  private mutating func forceAdd(_ kind: String, _ value: Bool) {
    if let index = addFlags.firstIndex(where: { $0.kind == kind }) { addFlags[index].add = value } else { addFlags.append((kind, value)) }
  }
}

extension String {
  /// Every occurrence of `target` replaced (Foundation-free).
  func replacingAll(_ target: String, with replacement: String) -> String {
    guard !target.isEmpty, contains(target) else { return self }
    var result = ""
    var rest = self[...]
    while let range = rest.firstRange(of: target) {
      result += rest[..<range.lowerBound]
      result += replacement
      rest = rest[range.upperBound...]
    }
    return result + rest
  }
}
