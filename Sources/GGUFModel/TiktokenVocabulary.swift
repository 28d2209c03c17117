import JSON

/// A tiktoken BPE vocabulary (Kimi K2's `tiktoken.model`: one `<base64 token> <rank>` per line, the ranks the
/// merge order) with the special tokens Kimi's `TikTokenTokenizer` puts after it, and the GPT-2 byte-level view
/// llama.cpp's converter writes it in.
struct TiktokenVocabulary {
  /// Token bytes and rank, in file order (the order Python's dict keeps, which the converter walks).
  let ranked: [(token: [UInt8], rank: Int)]
  /// Rank of each token's bytes.
  let rankOf: [[UInt8]: Int]

  /// Kimi's `num_reserved_special_tokens` (256) + 2: the special ids after the base vocabulary.
  static let specialTokenCount = 258
  /// The longest token accepted, in bytes (Kimi K2's are far shorter): BPE of a token is quadratic in its length.
  static let maximumTokenBytes = 1024

  /// Parses `tiktoken.model` (tiktoken's `load_tiktoken_bpe`), strictly: every non-empty line is a base64 token
  /// (of at most `maximumTokenBytes`) and a decimal rank; tokens and ranks are unique.
  init(_ bytes: [UInt8], file: String = "tiktoken.model") throws(TokenizerMetadata.Failure) {
    var ranked: [(token: [UInt8], rank: Int)] = []
    var rankOf: [[UInt8]: Int] = [:]
    var ranksSeen = Set<Int>()
    var lineNumber = 0
    for line in bytes.split(omittingEmptySubsequences: false, whereSeparator: { $0 == 0x0A }) {
      lineNumber += 1
      let trimmed = line.last == 0x0D ? line.dropLast() : line
      let fields = trimmed.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
      if fields.isEmpty { continue }
      func malformed(_ reason: String) -> TokenizerMetadata.Failure { .malformed(file: file, field: "line \(lineNumber)", reason: reason) }
      guard fields.count == 2 else { throw malformed("has \(fields.count) fields, expected a base64 token and a rank") }
      guard let token = Base64.decode(fields[0]), !token.isEmpty else { throw malformed("does not start with a base64 token") }
      guard token.count <= Self.maximumTokenBytes else {
        throw malformed("has a token of \(token.count) bytes; Smelt reads tokens of at most \(Self.maximumTokenBytes)")
      }
      guard fields[1].count <= 18, fields[1].allSatisfy({ (0x30...0x39).contains($0) }) else { throw malformed("has a rank that is not a decimal integer") }
      let rank = fields[1].reduce(0) { $0 * 10 + Int($1 - 0x30) }
      guard rankOf[token] == nil else { throw malformed("repeats a token of an earlier line") }
      guard ranksSeen.insert(rank).inserted else { throw malformed("repeats rank \(rank)") }
      ranked.append((token, rank))
      rankOf[token] = rank
    }
    guard !ranked.isEmpty else { throw .malformed(file: file, field: "", reason: "holds no tokens") }
    self.ranked = ranked
    self.rankOf = rankOf
  }

  /// The converter's `QwenModel.bpe(mergeable_ranks, token, max_rank=rank)`: the token's bytes merged pair by
  /// pair, always the lowest-ranked adjacent pair (the first of equals), while that rank is below `maximumRank`.
  func parts(of token: [UInt8], maximumRank: Int) -> [[UInt8]] {
    var parts = token.map { [$0] }
    while parts.count > 1 {
      var best: (index: Int, rank: Int)?
      for i in 0..<(parts.count - 1) {
        if let rank = rankOf[parts[i] + parts[i + 1]], rank < (best?.rank ?? .max) { best = (i, rank) }
      }
      guard let best, best.rank < maximumRank else { break }
      parts[best.index] += parts[best.index + 1]
      parts.remove(at: best.index + 1)
    }
    return parts
  }

  /// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the others for U+0100 onwards.
  static let byteCharacters: [Character] = {
    let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
    var table = [Character](repeating: " ", count: 256)
    var next = 0
    for byte in 0..<256 {
      if printable.contains(byte) {
        table[byte] = Character(Unicode.Scalar(UInt8(byte)))
      } else {
        table[byte] = Character(Unicode.Scalar(UInt32(256 + next))!)
        next += 1
      }
    }
    return table
  }()

  /// `token_bytes_to_string`: each byte as its `bytes_to_unicode` character.
  static func string(of token: [UInt8]) -> String { String(token.map { byteCharacters[Int($0)] }) }
}

/// Standard base64 (RFC 4648, `+/`, `=` padding), as Python's `base64.b64decode` reads tiktoken files.
enum Base64 {
  private static let values: [Int8] = {
    var table = [Int8](repeating: -1, count: 256)
    for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = Int8(i) }
    return table
  }()

  /// The bytes `text` encodes, or nil when it is not padded base64.
  static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
    guard text.count % 4 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(text.count / 4 * 3)
    var accumulator = 0, bits = 0, padding = 0
    for c in text {
      if c == UInt8(ascii: "=") {
        padding += 1
        continue
      }
      let value = values[Int(c)]
      guard value >= 0, padding == 0 else { return nil }
      accumulator = (accumulator << 6) | Int(value)
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: accumulator >> bits))
        accumulator &= (1 << bits) - 1
      }
    }
    guard padding <= 2, (text.count / 4 * 3) - padding == out.count else { return nil }
    return out
  }
}

extension TokenizerMetadata {
  /// The metadata llama.cpp's converter writes for a tiktoken vocabulary (`DeepseekV2Model.set_vocab`, the
  /// `kimi-k2` branch, after `_set_vocab_gpt2` finds no `tokenizer.json`): ids `0..<vocabularySize` are the base
  /// tokens by rank (GPT-2 byte-level strings, NORMAL) and the special tokens Kimi's `TikTokenTokenizer` numbers
  /// after them (the `added_tokens_decoder` contents of `tokenizer_config.json`, `<|reserved_token_<id>|>` for the
  /// rest; CONTROL), `[PAD<id>]` (UNUSED) where an id has none; the merges are each multi-byte token's two parts
  /// under the ranks below its own (tokens BPE cannot split in two have none); the special ids, flags and chat
  /// template come from gguf-py's `SpecialVocab` (without a `tokenizer.json`: `config.json`'s ids only).
  ///
  /// - Throws: `Failure` for a malformed `tiktoken.model` or JSON file.
  public init(
    tiktoken: [UInt8], tokenizerConfigJSON: [UInt8]?, configJSON: [UInt8]?, chatTemplateJinja: String?, vocabularySize: Int?,
    pre: String
  ) throws(Failure) {
    let vocabulary = try TiktokenVocabulary(tiktoken)
    let config = try tokenizerConfigJSON.map { bytes throws(Failure) in try Self.object(bytes, file: "tokenizer_config.json") }
    let modelConfig = try configJSON.map { bytes throws(Failure) in try Self.object(bytes, file: "config.json") }

    // TikTokenTokenizer: special_tokens = {added content or <|reserved_token_i|>: i} for the 258 ids after the base.
    let base = vocabulary.ranked.count
    var added: [Int: String] = [:]
    for (key, entry) in config?["added_tokens_decoder"]?.objectValue ?? JSONObject() {
      guard let id = Int(key), let content = entry["content"]?.stringValue else {
        throw .malformed(file: "tokenizer_config.json", field: "added_tokens_decoder[\(key)]", reason: "needs an integer key and a string content")
      }
      added[id] = content
    }
    let specialIDs = base..<(base + TiktokenVocabulary.specialTokenCount)
    let size = vocabularySize ?? specialIDs.upperBound

    // The converter's reverse_vocab: {**vocab, **special_tokens} keyed by spelling (a later key equal to an earlier
    // one takes its place and its id), then reversed in insertion order (a later entry with the same id wins).
    var merged: [(text: String, id: Int)] = []
    var position: [String: Int] = [:]
    func insert(_ text: String, _ id: Int) {
      if let index = position[text] {
        merged[index].id = id
      } else {
        position[text] = merged.count
        merged.append((text, id))
      }
    }
    for (token, rank) in vocabulary.ranked { insert(TiktokenVocabulary.string(of: token), rank) }
    // TikTokenTokenizer's special_tokens dictionary: a repeated content keeps its last id.
    var specialByText: [String: Int] = [:]
    for id in specialIDs {
      let text = added[id] ?? "<|reserved_token_\(id)|>"
      specialByText[text] = id
      insert(text, id)
    }
    let controlIDs = Set(specialByText.values)
    var byID: [Int: String] = [:]
    for (text, id) in merged { byID[id] = text }
    let (tokens, types) = Self.tokenList(size: size, byID: byID) { id, token in (token, controlIDs.contains(id) ? .control : .normal) }

    var merges: [String] = []
    for (token, rank) in vocabulary.ranked where token.count > 1 {
      let parts = vocabulary.parts(of: token, maximumRank: rank)
      if parts.count == 2 { merges.append(TiktokenVocabulary.string(of: parts[0]) + " " + TiktokenVocabulary.string(of: parts[1])) }
    }
    let special = SpecialVocabulary(
      tokenizer: nil, config: config, modelConfig: modelConfig, chatTemplateJinja: chatTemplateJinja, vocabularySize: size)
    self.init(
      model: "gpt2", pre: pre, tokens: tokens, tokenTypes: types, merges: merges, specialTokenIDs: special.ids,
      addSpecialTokens: special.addFlags, chatTemplate: special.chatTemplate, namedChatTemplates: special.namedChatTemplates,
      normalizerLowercase: nil, normalizerStripAccents: nil)
  }
}
