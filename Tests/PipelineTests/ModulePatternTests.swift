import Testing
@testable import Pipeline

@Suite("module patterns")
struct ModulePatternTests {
  @Test(
    "the byte-level regex pattern equals the Character-level definition",
    arguments: [
      "model.layers.12.mlp.experts.3.up_proj", "", ".", "a..b", "lm_head", "model.layers.0", "x.(1).y[2]+$",
      "w.00.x", "model.layers.٣.mlp", "e\u{301}.1", "a.b.c.",
    ])
  func bytePatternMatchesCharacterPattern(module: String) {
    #expect(QuantizationConfigWriter.regexPattern(module) == QuantizationConfigWriter.characterRegexPattern(module))
  }

  @Test(
    "byte-level escaping equals the Character-level definition",
    arguments: [
      "model.layers.12.mlp.experts.3.up_proj", "", ".", "lm_head", "x.(1).y[2]+$", "\\^$.|?*+()[]{}", "a\r\n.b",
      "model.layers.٣.mlp", "e\u{301}.1", ".\u{301}x",
    ])
  func byteEscapingMatchesCharacterEscaping(text: String) {
    #expect(QuantizationConfigWriter.escapeRegex(text) == QuantizationConfigWriter.characterEscapeRegex(text))
  }

  @Test("escaping leaves plain names alone and escapes every regex metacharacter")
  func escaping() {
    #expect(QuantizationConfigWriter.escapeRegex("model_x1") == "model_x1")
    #expect(QuantizationConfigWriter.escapeRegex("a.b(c)") == "a\\.b\\(c\\)")
    #expect(QuantizationConfigWriter.regexPattern("model.layers.12.mlp") == "model\\.layers\\.\\d+\\.mlp")
  }
}
