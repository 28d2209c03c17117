import Checkpoint
import GGML
import JSON

/// Per-tensor ggml types for a GGUF target, over the preset's own choices (what llama-quantize's
/// `--tensor-type` does): `--rule GLOB=TYPE` on the command line and the rules of a `--recipe FILE`,
///
///     {"rules": [{"match": "blk.*.ffn_*_exps.weight", "scheme": "q2_k"},
///                {"match": "blk.*.attn_*", "scheme": "q8_0"}],
///      "default": "gguf-q4_k_m"}
///
/// GLOBs match GGUF tensor names; the first matching rule wins (`--rule`s before the file's); `default`, when
/// given, names the preset of every other tensor and must be the `--to` preset (a file made for one preset is not
/// applied silently to another).
public enum GGUFRecipe {
  /// One override: tensors whose GGUF name matches `glob` are written as `type`.
  public typealias Override = (glob: Glob, type: GGMLType)

  /// Parses `GLOB=TYPE` (`blk.*.attn_k_b.weight=q8_0`).
  public static func rule(_ text: String) throws(ConversionError) -> Override {
    guard let equals = text.lastIndex(of: "="), equals != text.startIndex else {
      throw .invalidRecipe("--rule for a GGUF target must look like 'GLOB=TYPE' (e.g. 'blk.*.attn_k_b.weight=q8_0'), got '\(text)'")
    }
    let type = try self.type(String(text[text.index(after: equals)...]), in: "--rule '\(text)'")
    return (Glob(String(text[..<equals])), type)
  }

  /// Parses a recipe file: its overrides, in order, and the preset its `default` names (`nil` when absent).
  public static func parse(json bytes: [UInt8], path: String) throws(ConversionError) -> (overrides: [Override], preset: String?) {
    let value: JSONValue
    do { value = try bytes.withUnsafeBytes { try JSONParser.parse($0) } } catch {
      throw .invalidRecipe("\(path): not valid JSON: \(error)")
    }
    guard let object = value.objectValue else { throw .invalidRecipe("\(path): expected a JSON object with \"rules\"") }
    for key in object.keys where !["rules", "default"].contains(key) {
      throw .invalidRecipe("\(path): unknown key '\(key)' (expected \"rules\" and \"default\")")
    }
    guard let items = object["rules"]?.arrayValue else {
      throw .invalidRecipe("\(path): \"rules\" should be an array of {\"match\": GLOB, \"scheme\": GGML_TYPE}")
    }
    var overrides: [Override] = []
    for (index, item) in items.enumerated() {
      guard let rule = item.objectValue, let match = rule["match"]?.stringValue, let scheme = rule["scheme"]?.stringValue,
        rule.keys.allSatisfy({ $0 == "match" || $0 == "scheme" })
      else {
        throw .invalidRecipe("\(path): rules[\(index)] should be {\"match\": GLOB, \"scheme\": GGML_TYPE} and nothing else")
      }
      overrides.append((Glob(match), try type(scheme, in: "\(path): rules[\(index)]")))
    }
    var preset: String?
    if let text = object["default"] {
      guard let name = text.stringValue else { throw .invalidRecipe("\(path): \"default\" should be a gguf preset name") }
      preset = name
    }
    return (overrides, preset)
  }

  private static func type(_ name: String, in context: String) throws(ConversionError) -> GGMLType {
    guard let type = GGMLType(name: name), GGMLKernels.forType(type) != nil else {
      let known = GGMLKernels.supportedTypes.map { $0.name.lowercased() }.joined(separator: ", ")
      throw .invalidRecipe("\(context): '\(name)' is not a ggml type Smelt writes (\(known))")
    }
    return type
  }
}
