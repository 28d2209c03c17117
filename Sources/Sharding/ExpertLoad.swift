import JSON

/// Measured routed-expert activation counts per MoE layer, for load-balanced placement.
///
/// File format (JSON): an object mapping the decoder layer index (as a string) to an array with one
/// non-negative number per routed expert, optionally wrapped in `{"layers": {...}}`:
///
///     {"layers": {"3": [1200, 87, 5312, ...], "4": [...]}}
///
/// Layers the file does not mention are placed as if every expert had the same load.
public struct ExpertLoad: Sendable, Equatable {
  /// Layer index → per-expert counts.
  public var counts: [Int: [Double]]
  /// Where the counts came from, for messages.
  public var path: String

  public init(counts: [Int: [Double]], path: String = "expert load") {
    self.counts = counts
    self.path = path
  }

  /// Parses the file's bytes. `path` is for messages.
  public init(json bytes: [UInt8], path: String) throws(ShardingError) {
    let value: JSONValue
    do { value = try JSONParser.parse(bytes) } catch {
      throw .invalidExpertLoad(path: path, reason: "\(error)")
    }
    guard var object = value.objectValue else {
      throw .invalidExpertLoad(path: path, reason: "expected a JSON object of layer index -> counts")
    }
    if let inner = object["layers"]?.objectValue { object = inner }
    var counts: [Int: [Double]] = [:]
    for (key, item) in object {
      guard let layer = Int(key), layer >= 0 else {
        throw .invalidExpertLoad(path: path, reason: "key '\(key)' is not a layer index")
      }
      guard let array = item.arrayValue else {
        throw .invalidExpertLoad(path: path, reason: "layer \(key): expected an array of counts, found \(item.kindDescription)")
      }
      var values: [Double] = []
      values.reserveCapacity(array.count)
      for (expert, element) in array.enumerated() {
        guard let number = element.doubleValue, number.isFinite, number >= 0 else {
          throw .invalidExpertLoad(path: path, reason: "layer \(key), expert \(expert): expected a non-negative number, found \(element.kindDescription)")
        }
        values.append(number)
      }
      counts[layer] = values
    }
    self.counts = counts
    self.path = path
  }
}
