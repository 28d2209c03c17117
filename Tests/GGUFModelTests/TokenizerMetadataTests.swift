import GGUF
import JSON
import SystemIO
import TestSupport
import Testing

@testable import GGUFModel

@Suite("tokenizer metadata")
struct TokenizerMetadataTests {
  static let tokenizerJSON = """
    {"version": "1.0",
     "added_tokens": [
       {"id": 0, "content": "<｜begin▁of▁sentence｜>", "special": true, "normalized": false},
       {"id": 1, "content": "<｜end▁of▁sentence｜>", "special": true, "normalized": false},
       {"id": 2, "content": "<｜▁pad▁｜>", "special": true, "normalized": false},
       {"id": 9, "content": "<think>", "special": false, "normalized": false},
       {"id": 10, "content": "▁user", "special": false, "normalized": true}],
     "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]},
     "post_processor": {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<｜begin▁of▁sentence｜>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
     "model": {"type": "BPE", "vocab": {"a": 3, "b": 4, "ab": 5, "Ġa": 6, "Ġ": 7, "a b": 8},
               "merges": [["a", "b"], ["Ġ", "a"], ["a", " b"]]}}
    """
  static let configJSON = """
    {"add_bos_token": true, "add_eos_token": false, "bos_token": {"content": "<｜begin▁of▁sentence｜>"},
     "eos_token": "<｜end▁of▁sentence｜>", "pad_token": "<｜▁pad▁｜>", "unk_token": null,
     "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}
    """

  static func files(_ tokenizer: String = tokenizerJSON, _ config: String? = configJSON) -> TokenizerMetadata.Files {
    TokenizerMetadata.Files(tokenizerJSON: Array(tokenizer.utf8), tokenizerConfigJSON: config.map { Array($0.utf8) })
  }

  @Test("tokens, types, merges and special tokens as convert_hf_to_gguf.py writes them")
  func bpe() throws {
    let t = try TokenizerMetadata(files: Self.files(), vocabularySize: 14, pre: "deepseek-v3")
    #expect(t.model == "gpt2" && t.pre == "deepseek-v3")
    #expect(t.tokens == ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "a", "b", "ab", "Ġa", "Ġ", "a b", "<think>", " user", "[PAD11]", "[PAD12]", "[PAD13]"])
    #expect(t.tokenTypes == [.control, .control, .control, .normal, .normal, .normal, .normal, .normal, .normal, .userDefined, .userDefined, .unused, .unused, .unused])
    #expect(t.merges == ["a b", "Ġ a", "a Ġb"], "pair merges are joined, spaces inside a part become U+0120")
    #expect(t.specialTokenIDs.map(\.kind) == ["bos", "eos", "pad"] && t.specialTokenIDs.map(\.id) == [0, 1, 2])
    #expect(t.addSpecialTokens.map(\.kind) == ["bos", "eos"] && t.addSpecialTokens.map(\.add) == [true, false])
    #expect(t.chatTemplate == "{% for m in messages %}{{ m.content }}{% endfor %}")
    #expect(t.normalizerLowercase == true)
    let keys = t.keyValues.map(\.key)
    #expect(keys == [
      "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
      "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
      "tokenizer.chat_template", "tokenizer.ggml.normalizer.lowercase",
    ])
    #expect(t.keyValues[3].value == .array(.int32([3, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4, 5, 5, 5])))
  }

  @Test("config.json ids fill in what tokenizer_config.json lacks; no tokenizer means model none")
  func fallbacks() throws {
    let files = TokenizerMetadata.Files(
      tokenizerJSON: Array(Self.tokenizerJSON.utf8), tokenizerConfigJSON: nil,
      configJSON: Array(#"{"bos_token_id": 0, "eos_token_id": 1, "vocab_size": 11}"#.utf8))
    let t = try TokenizerMetadata(files: files, vocabularySize: 11, pre: "deepseek-v3")
    #expect(t.specialTokenIDs.map(\.kind) == ["bos", "eos"])
    #expect(t.addSpecialTokens.map(\.kind) == ["bos"], "the post-processor's template still says add BOS")
    #expect(TokenizerMetadata.none.keyValues == [GGUFKeyValue("tokenizer.ggml.model", .string("none"))])
  }

  @Test("errors name the file and field")
  func errors() {
    #expect(throws: TokenizerMetadata.Failure.notBPE(found: "WordLevel")) {
      try TokenizerMetadata(files: Self.files(#"{"model": {"type": "WordLevel", "vocab": {}}}"#), vocabularySize: 4, pre: "x")
    }
    #expect(throws: TokenizerMetadata.Failure.tokenIDOutOfRange(token: "ab", id: 5, vocabularySize: 4)) {
      try TokenizerMetadata(files: Self.files(#"{"model": {"type": "BPE", "vocab": {"ab": 5}}}"#), vocabularySize: 4, pre: "x")
    }
    do {
      _ = try TokenizerMetadata(files: Self.files("{not json"), vocabularySize: 4, pre: "x")
      Issue.record("expected a JSON error")
    } catch {
      #expect("\(error)".hasPrefix("tokenizer.json is not valid JSON"))
    }
  }

  @Test("an architecture's special tokens by content (GLM's [gMASK] BOS, <|user|> EOT, <|observation|> EOM) fill only kinds the tokenizer left unset, in the converter's order")
  func architectureSpecialTokens() throws {
    let tokenizer = """
      {"added_tokens": [
         {"id": 3, "content": "<|endoftext|>", "special": true}, {"id": 4, "content": "[gMASK]", "special": true},
         {"id": 5, "content": "<|user|>", "special": true}, {"id": 6, "content": "<|observation|>", "special": true}],
       "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
      """
    let config = #"{"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}"#
    let t = try TokenizerMetadata(
      files: Self.files(tokenizer, config), vocabularySize: 7, pre: "glm4", architectureSpecialTokens: Glm4Moe.specialTokens)
    #expect(t.specialTokenIDs.map { "\($0.kind)=\($0.id)" } == ["eos=3", "pad=3", "bos=4", "eot=5", "unk=3", "eom=6"])
    let keys = t.keyValues.map(\.key)
    #expect(keys.contains("tokenizer.ggml.eom_token_id") && keys.contains("tokenizer.ggml.eot_token_id"))
    // Without the architecture's list, only the tokenizer's own.
    let plain = try TokenizerMetadata(files: Self.files(tokenizer, config), vocabularySize: 7, pre: "glm4")
    #expect(plain.specialTokenIDs.map(\.kind) == ["eos", "pad"])
  }
}

@Suite("tokenizer metadata of the bundled samples")
struct SampleTokenizerTests {
  @Test("the samples carry a real 512-token byte-level BPE vocabulary")
  func sampleTokenizer() throws {
    let directory = TestPaths.sample("tiny-deepseek-v3")
    let files = TokenizerMetadata.Files(
      tokenizerJSON: try FileSystem.readFile(directory + "/tokenizer.json"),
      tokenizerConfigJSON: try FileSystem.readFile(directory + "/tokenizer_config.json"),
      configJSON: try FileSystem.readFile(directory + "/config.json"))
    let t = try TokenizerMetadata(files: files, vocabularySize: 512, pre: DeepSeek2.preTokenizer)
    #expect(t.tokens.count == 512 && t.merges.count == 253 && t.merges.first == "Ġ t")
    #expect(t.tokenTypes.prefix(3).allSatisfy { $0 == .control } && t.tokenTypes.dropFirst(3).allSatisfy { $0 == .normal })
    #expect(t.specialTokenIDs.map(\.kind) == ["bos", "eos", "pad"] && t.specialTokenIDs.map(\.id) == [0, 1, 2])
    #expect(t.addSpecialTokens.map(\.kind) == ["bos", "eos"] && t.addSpecialTokens.map(\.add) == [true, false])
    #expect(t.chatTemplate?.contains("<｜Assistant｜>") == true)
  }


  // MARK: tiktoken (Kimi)

  /// A tiktoken file of `(token, rank)` lines.
  static func tiktoken(_ entries: [(String, Int)]) -> [UInt8] {
    Array(entries.map { "\(base64($0.0)) \($0.1)\n" }.joined().utf8)
  }

  static func base64(_ text: String) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    let bytes = Array(text.utf8)
    var out = ""
    for start in stride(from: 0, to: bytes.count, by: 3) {
      let chunk = Array(bytes[start..<min(bytes.count, start + 3)])
      let value = chunk.enumerated().reduce(0) { $0 | Int($1.element) << (16 - 8 * $1.offset) }
      for i in 0...chunk.count { out.append(alphabet[(value >> (18 - 6 * i)) & 63]) }
      out += String(repeating: "=", count: 3 - chunk.count)
    }
    return out
  }

  @Test("a tiktoken vocabulary as llama.cpp's converter writes Kimi's: byte-level strings by rank, the 258 special ids after the base (added contents, else reserved names), merges from BPE under each token's rank")
  func tiktokenVocabulary() throws {
    // "ab" splits into a + b; "abc" into ab + c; " a" into space + a; "bc" exists but after "abc", so "abc" never
    // reaches b + c. "xyz" has no two-part split (x, y, z are base tokens, xy / yz are not): no merge.
    let file = Self.tiktoken([("a", 0), ("b", 1), ("c", 2), (" ", 3), ("x", 4), ("y", 5), ("z", 6), ("ab", 7), ("abc", 8), (" a", 9), ("bc", 10), ("xyz", 11)])
    let config = #"{"added_tokens_decoder": {"12": {"content": "[BOS]", "special": true}, "13": {"content": "[EOS]"}}, "bos_token": "[BOS]", "add_bos_token": false, "chat_template": "{{ x }}"}"#
    let model = #"{"text_config": {"bos_token_id": 12, "eos_token_id": 13}}"#
    let t = try TokenizerMetadata(
      tiktoken: file, tokenizerConfigJSON: Array(config.utf8), configJSON: Array(model.utf8), chatTemplateJinja: nil, vocabularySize: 16,
      pre: "kimi-k2")
    #expect(t.model == "gpt2" && t.pre == "kimi-k2")
    #expect(t.tokens == ["a", "b", "c", "Ġ", "x", "y", "z", "ab", "abc", "Ġa", "bc", "xyz", "[BOS]", "[EOS]", "<|reserved_token_14|>", "<|reserved_token_15|>"])
    #expect(t.tokenTypes == Array(repeating: .normal, count: 12) + Array(repeating: .control, count: 4))
    #expect(t.merges == ["a b", "ab c", "Ġ a", "b c"])
    // No tokenizer.json: tokenizer_config's contents name no added token (gguf-py's added_tokens = {}); config.json's ids count.
    #expect(t.specialTokenIDs.map { "\($0.kind)=\($0.id)" } == ["bos=12", "eos=13"])
    #expect(t.addSpecialTokens.map { "\($0.kind)=\($0.add)" } == ["bos=false"] && t.chatTemplate == "{{ x }}")
    // Without a vocab_size every special id is written.
    let all = try TokenizerMetadata(tiktoken: file, tokenizerConfigJSON: nil, configJSON: nil, chatTemplateJinja: nil, vocabularySize: nil, pre: "kimi-k2")
    #expect(all.tokens.count == 12 + 258 && all.tokens.last == "<|reserved_token_269|>")
  }

  @Test("a special token spelled like a base token takes its place: the base id becomes [PAD<id>], as the converter's merged dictionary does")
  func tiktokenSpecialReplacesBaseSpelling() throws {
    let config = #"{"added_tokens_decoder": {"2": {"content": "a"}}}"#
    let t = try TokenizerMetadata(
      tiktoken: Self.tiktoken([("a", 0), ("b", 1)]), tokenizerConfigJSON: Array(config.utf8), configJSON: nil, chatTemplateJinja: nil,
      vocabularySize: 4, pre: "kimi-k2")
    #expect(t.tokens == ["[PAD0]", "b", "a", "<|reserved_token_3|>"])
    #expect(t.tokenTypes == [.unused, .normal, .control, .control])
    // Two special ids of one content: the dictionary keeps the later id; the earlier has no token.
    let twice = #"{"added_tokens_decoder": {"2": {"content": "[X]"}, "3": {"content": "[X]"}}}"#
    let u = try TokenizerMetadata(
      tiktoken: Self.tiktoken([("a", 0), ("b", 1)]), tokenizerConfigJSON: Array(twice.utf8), configJSON: nil, chatTemplateJinja: nil,
      vocabularySize: 5, pre: "kimi-k2")
    #expect(u.tokens == ["a", "b", "[PAD2]", "[X]", "<|reserved_token_4|>"])
    #expect(u.tokenTypes == [.normal, .normal, .unused, .control, .control])
  }

  @Test("GPT-2's byte-level alphabet: printable Latin-1 as itself, the rest from U+0100 in byte order")
  func byteLevelStrings() {
    #expect(TiktokenVocabulary.string(of: [0x20, 0x0A, 0x00, 0x21, 0x7F, 0xAD, 0xFF]) == "Ġ\u{10A}\u{100}!\u{121}\u{143}ÿ")
    #expect(Set(TiktokenVocabulary.byteCharacters).count == 256)
  }

  @Test(
    "a malformed tiktoken.model is refused naming the line",
    arguments: [
      ("YQ== 0\nYQ 1\n", "line 2"), ("YQ== 0\nYg== 0\n", "repeats rank 0"), ("YQ== 0\nYQ== 1\n", "repeats a token"),
      ("YQ== x\n", "not a decimal integer"), ("YQ== 0 1\n", "3 fields"), ("\n\n", "holds no tokens"), ("Y!== 0\n", "base64"),
      (String(repeating: "YWFh", count: 342) + " 0\n", "at most 1024"),
    ])
  func malformedTiktoken(text: String, expected: String) {
    let error = #expect(throws: TokenizerMetadata.Failure.self) {
      _ = try TokenizerMetadata(tiktoken: Array(text.utf8), tokenizerConfigJSON: nil, configJSON: nil, chatTemplateJinja: nil, vocabularySize: nil, pre: "kimi-k2")
    }
    #expect(error.map { "\($0)" }?.contains(expected) == true, "\(String(describing: error))")
  }

  @Test("the Kimi sample carries a real tiktoken vocabulary: 196 base tokens, Kimi's special names after them, 100 merges")
  func kimiSampleVocabulary() throws {
    let directory = TestPaths.sample("tiny-kimi-k2.5")
    let read = { (name: String) in try FileSystem.readFile(FileSystem.join(directory, name)) }
    let t = try TokenizerMetadata(
      tiktoken: try read("tiktoken.model"), tokenizerConfigJSON: try read("tokenizer_config.json"), configJSON: try read("config.json"),
      chatTemplateJinja: nil, vocabularySize: 256, pre: "kimi-k2")
    #expect(t.tokens.count == 256 && t.tokens[196] == "[BOS]" && t.tokens[197] == "[EOS]" && t.tokens[213] == "<|im_middle|>")
    #expect(t.tokens[198...].contains("<|reserved_token_201|>") && t.tokenTypes[195] == .normal && t.tokenTypes[196] == .control)
    #expect(t.merges.count == 100 && t.chatTemplate?.contains("<|im_middle|>") == true)
  }
}
