import JSON
import SystemIO
import TensorCore

/// `smelt-manifest.json`: the integrity record written last into every output directory — each file's
/// size and SHA-256, the Smelt version and the command that made it. `smelt verify` checks it.
///
/// It carries no timestamp, so two runs of the same command produce byte-identical directories.
public struct OutputManifest: Sendable, Equatable {
  /// The manifest's file name.
  public static let fileName = "smelt-manifest.json"
  /// Smelt's version, recorded in every manifest.
  public static let smeltVersion = "0.1.0"

  public struct File: Sendable, Equatable {
    public var name: String
    public var sha256: String
    public var byteCount: Int
    public init(name: String, sha256: String, byteCount: Int) {
      self.name = name
      self.sha256 = sha256
      self.byteCount = byteCount
    }
  }

  public var files: [File]
  public var commandLine: [String]
  public var version: String
  /// What the output was made from: the run's options and the stamps of its input files (`run`), so that
  /// `--resume` on a finished output reuses its files only for the same options and unchanged inputs.
  public var runFingerprint: String?

  public init(files: [File], commandLine: [String], version: String = OutputManifest.smeltVersion, runFingerprint: String? = nil) {
    self.files = files.sorted { $0.name < $1.name }
    self.commandLine = commandLine
    self.version = version
    self.runFingerprint = runFingerprint
  }

  /// The manifest as JSON bytes. The last member, `manifest_sha256`, is the SHA-256 of the same document
  /// without that member, so `smelt verify` detects a change to the manifest itself.
  public func jsonBytes() -> [UInt8] {
    let body = document(checksum: nil)
    return document(checksum: SHA256.hex(of: body))
  }

  private func document(checksum: String?) -> [UInt8] {
    var members: [(String, JSONValue)] = [
      ("schema", .string(DocumentSchema.outputManifest)),
      ("smelt_version", .string(version)),
      ("command", .array(commandLine.map { .string($0) })),
    ]
    if let runFingerprint { members.append(("run", .string(runFingerprint))) }
    members += [
      ("files", .array(files.map { file in
        .object(members: [("name", .string(file.name)), ("bytes", .number(JSONNumber(file.byteCount))), ("sha256", .string(file.sha256))])
      })),
    ]
    if let checksum { members.append(("manifest_sha256", .string(checksum))) }
    return JSONWriter(pretty: true).bytes(.object(members: members)) + [0x0A]
  }

  /// Why `bytes` (the file this manifest was parsed from) is not exactly what Smelt writes for it, or `nil`
  /// when it is: a changed value breaks `manifest_sha256`, any other edit breaks the canonical form.
  public func selfCheckProblem(_ bytes: [UInt8]) -> String? {
    if bytes == jsonBytes() { return nil }
    let recorded = (try? bytes.withUnsafeBytes { try JSONParser.parse($0) })?["manifest_sha256"]?.stringValue
    guard let recorded else { return "has no manifest_sha256 (edited, or written by an older smelt)" }
    if recorded != SHA256.hex(of: document(checksum: nil)) {
      return "its contents do not match its manifest_sha256 (the manifest was changed after it was written)"
    }
    return "is not byte-for-byte what smelt writes for its contents (the manifest was edited)"
  }

  /// Writes the manifest into `directory` atomically.
  public func write(to directory: String) throws {
    try FileSystem.writeFileAtomically(jsonBytes(), to: FileSystem.join(directory, OutputManifest.fileName))
  }

  /// Reads `directory`'s manifest.
  public static func read(from directory: String) throws -> OutputManifest {
    let path = FileSystem.join(directory, fileName)
    return try OutputManifest(json: try FileSystem.readFile(path), path: path)
  }

  /// Parses manifest bytes; `path` is used in error messages. File names must be plain relative paths.
  public init(json bytes: [UInt8], path: String) throws {
    let value: JSONValue
    do { value = try bytes.withUnsafeBytes { try JSONParser.parse($0) } } catch {
      throw CheckpointError.invalidManifest(path: path, reason: "\(error)")
    }
    guard let files = value["files"]?.arrayValue, let command = value["command"]?.arrayValue else {
      throw CheckpointError.invalidManifest(path: path, reason: "not a smelt manifest (missing files or command)")
    }
    var parsed: [File] = []
    for item in files {
      guard let name = item["name"]?.stringValue, let sha = item["sha256"]?.stringValue, let bytes = item["bytes"]?.intValue,
        bytes >= 0, CheckpointIndex.isSafeRelativePath(name)
      else { throw CheckpointError.invalidManifest(path: path, reason: "malformed file entry \(JSONWriter().string(item))") }
      parsed.append(File(name: name, sha256: sha, byteCount: bytes))
    }
    self.init(
      files: parsed, commandLine: command.compactMap(\.stringValue), version: value["smelt_version"]?.stringValue ?? "?",
      runFingerprint: value["run"]?.stringValue)
  }
}
