import JSON

extension JSONObject {
  /// A copy with `key` set to `value` (replacing it in place, or appended at the end).
  public func setting(_ key: String, to value: JSONValue) -> JSONObject {
    var copy = self
    copy[key] = value
    return copy
  }

  /// A copy without `key`.
  public func removing(_ key: String) -> JSONObject {
    var copy = self
    copy[key] = nil
    return copy
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
