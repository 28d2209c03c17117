import Checkpoint

/// A `--place 'GLOB=DEVICE[,DEVICE...]'` rule: tensors matching `GLOB` go only to the listed devices.
///
/// Rules are tried in order and the first match wins. A rule is matched against every tensor of a unit
/// (a routed expert, or a weight with its quantization companions), so a unit is never split between rules.
public struct PlacementRule: Sendable, Hashable {
  /// The text as given, for messages and the manifest.
  public var text: String
  /// The tensor-name pattern (`*.experts.*`).
  public var glob: Glob
  /// Target device names.
  public var deviceNames: [String]

  public init(glob: String, deviceNames: [String]) {
    self.text = glob + "=" + deviceNames.joined(separator: ",")
    self.glob = Glob(glob)
    self.deviceNames = deviceNames
  }

  /// Parses `GLOB=DEVICE[,DEVICE...]` (split at the last `=`).
  public init(parsing text: String) throws(ShardingError) {
    guard let equals = text.lastIndex(of: "=") else { throw .invalidPlaceRule(text: text, reason: "no '='") }
    let pattern = String(text[..<equals])
    let devices = text[text.index(after: equals)...].split(separator: ",").map { String($0) }
    guard !pattern.isEmpty else { throw .invalidPlaceRule(text: text, reason: "empty pattern") }
    guard !devices.isEmpty, devices.allSatisfy({ !$0.isEmpty }) else {
      throw .invalidPlaceRule(text: text, reason: "no device after '='")
    }
    self.init(glob: pattern, deviceNames: devices)
    self.text = text
  }
}
