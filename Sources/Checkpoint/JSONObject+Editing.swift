import JSON

extension JSONObject {
  /// A copy with `key` set to `value` (replacing it in place, or appended at the end).
  public func setting(_ key: String, to value: JSONValue) -> JSONObject {
    var members = self.members.map { ($0.key, $0.value) }
    if let i = members.firstIndex(where: { $0.0 == key }) {
      members[i].1 = value
    } else {
      members.append((key, value))
    }
    return JSONObject(members: members) ?? self
  }

  /// A copy without `key`.
  public func removing(_ key: String) -> JSONObject {
    JSONObject(members: members.filter { $0.key != key }.map { ($0.key, $0.value) }) ?? self
  }

  /// Without `quantization_config`, at the top level and in a nested `text_config` (Kimi K2.5 keeps it there),
  /// and without MLX's `quantization` object (mlx-lm writes both; mlx-lm reads `quantization`).
  public func removingQuantizationConfig() -> JSONObject {
    var result = removing("quantization_config")
    if result["quantization"]?.objectValue != nil { result = result.removing("quantization") }
    if let text = result["text_config"]?.objectValue, text["quantization_config"] != nil {
      result = result.setting("text_config", to: .object(text.removing("quantization_config")))
    }
    return result
  }
}
