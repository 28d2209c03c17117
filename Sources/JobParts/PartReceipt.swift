import JSON
import SystemIO

/// One output a part wrote: a whole file, or (in a file shared by several parts) the byte ranges it owns.
public struct PartOutput: Sendable, Equatable {
  /// Relative to the job's directory (`model-00002-of-00005.safetensors`, `gpu1/model-00001-of-00002.safetensors`).
  public var path: String
  /// The complete file's size.
  public var byteCount: Int
  /// SHA-256 of the whole file; for a shared file, of this part's `ranges` read in order.
  public var sha256: String
  /// The byte ranges this part wrote in a shared file (sorted, disjoint); `nil` for a whole file.
  public var ranges: [Range<Int>]?
  /// A whole file's identity when its part finished it: while it is unchanged, `--finalize` takes `sha256`
  /// without reading the file again.
  public var stamp: FileStamp?

  public init(path: String, byteCount: Int, sha256: String, ranges: [Range<Int>]? = nil, stamp: FileStamp? = nil) {
    self.path = path
    self.byteCount = byteCount
    self.sha256 = sha256
    self.ranges = ranges
    self.stamp = stamp
  }

  /// Whether other parts write into the same file.
  public var isShared: Bool { ranges != nil }
}

/// What a split job's parts agree on, stored once in its directory (`.smelt-job.json`) by the first part to
/// start: every later part compares its own and refuses to join a job started with other options.
public struct JobDescription: Sendable, Equatable {
  /// `convert`, `shard` or `validate`.
  public var job: String
  /// The command line a single run of the same job records (`smelt convert IN OUT --to bf16`): without
  /// `--part`, `--resume` and other options that change how the job runs, not what it produces. `--finalize`
  /// re-plans from it.
  public var arguments: [String]
  /// A digest of everything that decides the output bytes: the plan and the inputs.
  public var fingerprint: String
  public var partCount: Int

  public init(job: String, arguments: [String], fingerprint: String, partCount: Int) {
    self.job = job
    self.arguments = arguments
    self.fingerprint = fingerprint
    self.partCount = partCount
  }

  static let schema = DocumentSchema.job

  var json: JSONValue {
    .object(members: [
      ("schema", .string(Self.schema)), ("job", .string(job)),
      ("arguments", .array(arguments.map { .string($0) })),
      ("fingerprint", .string(fingerprint)), ("part_count", .number(JSONNumber(partCount))),
    ])
  }

  init(json value: JSONValue, path: String) throws(PartsError) {
    guard value["schema"]?.stringValue == Self.schema, let job = value["job"]?.stringValue,
      let arguments = value["arguments"]?.arrayValue?.compactMap(\.stringValue),
      let fingerprint = value["fingerprint"]?.stringValue, let count = value["part_count"]?.intValue,
      (1...JobPart.maximumCount).contains(count)
    else { throw .damaged(path: path, reason: "not a Smelt job description (\(Self.schema))") }
    self.init(job: job, arguments: arguments, fingerprint: fingerprint, partCount: count)
  }
}

/// `.smelt-part-I-of-N.json`: what part I of N has written, rewritten after every output it completes (its
/// journal for `--resume`) and marked `finished` last. `--finalize` requires every part's receipt, finished,
/// for the same job, and checks each output against it.
public struct PartReceipt: Sendable, Equatable {
  public var job: String
  public var fingerprint: String
  public var part: JobPart
  public var finished: Bool
  public var outputs: [PartOutput]
  /// Results that are not files (a validation part's comparisons), in the job's own encoding.
  public var data: JSONValue?

  public init(job: String, fingerprint: String, part: JobPart, finished: Bool = false, outputs: [PartOutput] = [], data: JSONValue? = nil) {
    self.job = job
    self.fingerprint = fingerprint
    self.part = part
    self.finished = finished
    self.outputs = outputs
    self.data = data
  }

  static let schema = DocumentSchema.partReceipt

  var json: JSONValue {
    let outputs: [JSONValue] = outputs.map { output in
      var members: [(String, JSONValue)] = [
        ("path", .string(output.path)), ("bytes", .number(JSONNumber(output.byteCount))), ("sha256", .string(output.sha256)),
      ]
      if let stamp = output.stamp { members.append(("stamp", .string(stamp.description))) }
      if let ranges = output.ranges {
        members.append(("ranges", .array(ranges.map { .array([.number(JSONNumber($0.lowerBound)), .number(JSONNumber($0.upperBound))]) })))
      }
      return .object(members: members)
    }
    return .object(members: [
      ("schema", .string(Self.schema)), ("job", .string(job)), ("fingerprint", .string(fingerprint)),
      ("part", .number(JSONNumber(part.number))), ("part_count", .number(JSONNumber(part.count))),
      ("finished", .bool(finished)), ("outputs", .array(outputs)), ("data", data ?? .null),
    ])
  }

  init(json value: JSONValue, path: String) throws(PartsError) {
    func damaged(_ reason: String) -> PartsError { .damaged(path: path, reason: reason) }
    guard value["schema"]?.stringValue == Self.schema, let job = value["job"]?.stringValue,
      let fingerprint = value["fingerprint"]?.stringValue, let number = value["part"]?.intValue,
      let count = value["part_count"]?.intValue, (1...JobPart.maximumCount).contains(count), (1...count).contains(number),
      let finished = value["finished"]?.boolValue, let entries = value["outputs"]?.arrayValue
    else { throw damaged("not a Smelt part receipt (\(Self.schema))") }
    var outputs: [PartOutput] = []
    for entry in entries {
      guard let relative = entry["path"]?.stringValue, let bytes = entry["bytes"]?.intValue, bytes >= 0,
        let sha256 = entry["sha256"]?.stringValue
      else { throw damaged("an output lacks its path, size or SHA-256") }
      var ranges: [Range<Int>]?
      if let list = entry["ranges"]?.arrayValue {
        ranges = []
        for pair in list {
          guard let lower = pair[0]?.intValue, let upper = pair[1]?.intValue, 0 <= lower, lower <= upper, upper <= bytes,
            lower >= (ranges?.last?.upperBound ?? 0)
          else { throw damaged("'\(relative)' has byte ranges that are not sorted, disjoint ranges inside the file") }
          ranges?.append(lower..<upper)
        }
      }
      var stamp: FileStamp?
      if let text = entry["stamp"]?.stringValue {
        guard let parsed = FileStamp(text) else { throw damaged("'\(relative)' has a malformed stamp '\(text)'") }
        stamp = parsed
      }
      outputs.append(PartOutput(path: relative, byteCount: bytes, sha256: sha256, ranges: ranges, stamp: stamp))
    }
    // (`nil` alone would be `JSONValue.null`: the type is nil-literal expressible.)
    let data: JSONValue? = value["data"].flatMap { $0.isNull ? JSONValue?.none : $0 }
    self.init(job: job, fingerprint: fingerprint, part: JobPart(index: number - 1, of: count), finished: finished, outputs: outputs, data: data)
  }
}

