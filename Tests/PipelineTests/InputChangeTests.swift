// Issue 15 item 1: an input truncated while Smelt reads it (another process rewriting a shard, a network file
// system) killed the process with SIGBUS, temporary files on disk and the output locked. The truncation here
// is controlled: the checkpoint is opened (mapped), then cut, then converted, so the conversion is certain
// to read pages that are gone.
@testable import Checkpoint
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import Testing
@testable import Pipeline

#if canImport(Glibc)
  import Glibc
#endif

/// A one-file BF16 checkpoint of two 512×512 linear weights (1 MiB), in a fresh directory.
private func writeInput(_ name: String) throws -> String {
  let directory = try scratch(name)
  try FileSystem.createDirectory(directory)
  let tensors = (0..<2).map {
    PlannedTensor(name: "model.layers.\($0).mlp.up_proj.weight", dtype: .bfloat16, shape: [512, 512])
  }
  let writer = try SafeTensorsFileWriter(path: FileSystem.join(directory, "model.safetensors"), layout: SafeTensorsLayout(tensors: tensors))
  let bits = (0..<(512 * 512)).map { BFloat16.bits(from: Float($0 % 97 + 1) / 1000) }
  for tensor in tensors { try bits.withUnsafeBytes { try writer.write(tensorNamed: tensor.name, bytes: $0) } }
  try writer.commit()
  return directory
}

@Suite("Inputs changed while read") struct InputChangeTests {
  @Test("a shard truncated after it was mapped fails the conversion naming it; no temporary file, no signal", arguments: [
    ConversionTarget.cast(.float32), ConversionTarget.fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))),
  ])
  func truncatedDuringConversion(_ target: ConversionTarget) throws {
    let input = try writeInput("truncated-input-\(target)".filter { $0.isLetter || $0.isNumber || $0 == "-" })
    let path = FileSystem.join(input, "model.safetensors")
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target, selection: TensorSelection(includes: [Glob("*")]))
    let output = try scratch("truncated-output")
    let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
    defer { lock.release() }
    // Drop this process's pages of the mapping, then cut the file to its header and a few rows.
    checkpoint.files[0].mapping.advise(.dontNeed)
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.truncate(to: 64 << 10)
    descriptor.close()

    let runner = ConversionRunner(plan: plan, checkpoint: checkpoint, output: output, chunkElements: 1 << 14, workerCount: 2)
    do {
      _ = try runner.run(resume: false, commandLine: ["test"]) { _ in }
      Issue.record("a conversion of a truncated input must fail")
    } catch {
      #expect("\(error)".contains(path) && "\(error)".contains("truncated"), "\(error)")
    }
    let left = try FileSystem.contents(of: output)
    #expect(!left.contains { $0.hasSuffix(".smelt-tmp") || $0.hasSuffix(".safetensors") || $0 == "smelt-manifest.json" }, "\(left)")
  }

  @Test("a shard rewritten in place after it was mapped fails the conversion before commit")
  func rewrittenDuringConversion() throws {
    let input = try writeInput("rewritten-input")
    let path = FileSystem.join(input, "model.safetensors")
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: .cast(.float32), selection: TensorSelection(includes: [Glob("*")]))
    let output = try scratch("rewritten-output")
    let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
    defer { lock.release() }
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.write([0x55], at: 4096)
    var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
    _ = futimens(descriptor.rawValue, &times)
    descriptor.close()
    #expect(throws: SystemError.self) {
      _ = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
    }
    #expect(!(try FileSystem.contents(of: output)).contains { $0.hasSuffix(".safetensors") })
  }

  @Test("verify --deep of a file truncated while scanned reports it instead of scanning zeros")
  func truncatedDuringVerify() throws {
    let input = try writeInput("truncated-verify")
    let path = FileSystem.join(input, "model.safetensors")
    let file = try SafeTensorsFile(path: path)
    file.mapping.advise(.dontNeed)
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.truncate(to: 16 << 10)
    descriptor.close()
    let findings = Verification.scanValues(file, name: "model.safetensors", tensorNames: [])
    #expect(findings.contains { $0.code == .unreadableFile && $0.message.contains("truncated") }, "\(findings)")
  }
}
