import Checkpoint
import Foundation
import Pipeline
import SafeTensors
import TensorCore
import TestSupport

/// Shared fixtures: sample paths, temporary directories, a partial FP8 conversion of the BF16 sample made
/// with the Pipeline (once per test process), and a corrupted copy of it.
enum Fixtures {
  struct Failure: Error, CustomStringConvertible { var description: String }

  static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static let bf16Sample = repositoryRoot.appendingPathComponent("samples/tiny-deepseek-v3").path
  static let fp8Sample = repositoryRoot.appendingPathComponent("samples/tiny-deepseek-v3-fp8").path
  static let goldenDirectory = repositoryRoot.appendingPathComponent("Tests/ReferenceModelTests/Golden").path

  /// A fresh empty directory under the system temporary directory.
  static func temporaryDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "smelt-validation-\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// The converted layer and expert.
  static let convertedLayer = 3
  static let convertedExpert = 7

  /// The BF16 sample's layer 3 (attention, router, shared expert and routed expert 7) in one file with the
  /// sample's config.json: converting all 11 MB would take seconds in a debug build, mostly hashing.
  static let layerSlice: Result<String, any Error> = Result {
    let sample = try Checkpoint.open(bf16Sample)
    let prefix = "model.layers.\(convertedLayer)."
    let names = sample.tensorNames.filter { name in
      let parsed = TensorName(name)
      return name.hasPrefix(prefix) && (parsed.expert == nil || parsed.expert == convertedExpert)
    }
    let tensors = try names.map { name in
      let view = try sample.tensor(name)
      return (name, view.dtype, view.shape, view.copyBytes())
    }
    let directory = try writeCheckpoint(tensors)
    try FileManager.default.copyItem(atPath: bf16Sample + "/config.json", toPath: directory + "/config.json")
    return directory
  }

  /// `smelt convert SLICE OUT --to fp8-block` through `ConversionPlan` / `ConversionRunner`, once per process.
  static let fp8Conversion: Result<String, any Error> = Result {
    let output = try temporaryDirectory("fp8")
    let checkpoint = try Checkpoint.open(try layerSlice.get())
    let target = try require(ConversionTarget.parse("fp8-block"), "fp8-block target")
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target)
    _ = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
    return output
  }

  /// A copy of the conversion with `byteCount` bytes of `tensor` overwritten by 0x7E (E4M3 448, the largest
  /// code): a corrupted download or a bad write in one expert.
  static func damagedCopy(of directory: String, tensor: String, byteCount: Int = 8) throws -> String {
    let output = try temporaryDirectory("damaged")
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) where !name.hasPrefix(".") {
      try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: output + "/" + name)
    }
    let checkpoint = try Checkpoint.open(output)
    let location = try require(checkpoint.location(of: tensor), "tensor \(tensor)")
    let path = output + "/" + location.fileName
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    let prefix = try require(try handle.read(upToCount: 8), "header length")
    let headerLength = prefix.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let dataStart = 8 + headerLength + location.entry.dataOffsets.lowerBound
    let stride = location.entry.byteCount / byteCount
    for i in 0..<byteCount {
      try handle.seek(toOffset: UInt64(dataStart + i * stride + 3))
      try handle.write(contentsOf: Data([0x7E]))
    }
    return output
  }

  static func require<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw Failure(description: "missing \(what)") }
    return value
  }

  /// A single-file checkpoint holding `tensors` (name, dtype, shape, raw bytes); see `TestCheckpoint`.
  static func writeCheckpoint(_ tensors: [(String, DType, [Int], [UInt8])], config: String? = nil) throws -> String {
    try TestCheckpoint.write(tensors, config: config)
  }

  static func bytes(_ values: [Float]) -> [UInt8] { TestCheckpoint.bytes(values) }
}
