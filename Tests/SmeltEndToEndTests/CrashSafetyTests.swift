// Crash safety, resume, output-directory rules, write failures and concurrent writers. Some tests spawn the
// built `smelt` executable (next to the test bundle) to get a real process: SIGKILL, `ulimit -f`, SIGXFSZ.
import TensorCore
import Foundation
import SystemIO
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The `smelt` executable built alongside the tests, if present.
let smeltExecutable: String? = {
  guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
  var directory = (me as NSString).deletingLastPathComponent
  // Linux test bundles: .build/debug/SmeltPackageTests.xctest (a file); the tool is .build/debug/smelt.
  if directory.hasSuffix(".xctest") { directory = (directory as NSString).deletingLastPathComponent }
  let path = directory + "/smelt"
  return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}()

/// Runs `command` under `/bin/bash -c`, returning the exit status and stderr.
@discardableResult
func shell(_ command: String) throws -> (status: Int32, stderr: String) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/bin/bash")
  process.arguments = ["-c", command]
  let errors = Pipe()
  process.standardError = errors
  process.standardOutput = FileHandle.nullDevice
  try process.run()
  let data = errors.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("crash safety") struct CrashSafetyTests {
  /// The tiny checkpoint plus a large copied tensor, so the last output file is much bigger than the others.
  static func checkpointWithBigLastFile(_ scratch: ScratchDirectory) throws -> String {
    var shards = Fixture.tinyTensors()
    shards[1].append(.bf16("model.zz_big.weight", [256, 64], seed: 11))
    let input = scratch.join("in")
    try Fixture.writeCheckpoint(shards, to: input)
    return input
  }

  static let convertArguments = ["--to", "fp8-block", "--max-shard-size", "12KB", "-q"]

  @Test("a file-size limit (EFBIG) fails cleanly: message, no temporary file, finished files kept for --resume")
  func fileSizeLimit() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("efbig")
    defer { scratch.remove() }
    let input = try Self.checkpointWithBigLastFile(scratch)
    let inputBefore = Fixture.hashes(input)
    let reference = scratch.join("reference")
    try #require(runSmelt(["convert", input, reference] + Self.convertArguments).status == 0)

    let output = scratch.join("out")
    let arguments = ([input, output] + Self.convertArguments).joined(separator: " ")
    // bash counts ulimit -f in 1024-byte blocks: 20 KB lets the small files through and stops the 33 KB one.
    let limited = try shell("ulimit -f 20; exec \(smelt) convert \(arguments)")
    #expect(limited.status == 1, "\(limited.stderr)")
    #expect(limited.stderr.contains("File too large") && limited.stderr.contains("ulimit -f"), "\(limited.stderr)")
    let names = Fixture.names(output)
    #expect(!names.contains { $0.hasSuffix(".smelt-tmp") }, "\(names)")
    #expect(!names.contains("smelt-manifest.json"))
    #expect(names.contains(".smelt-progress.json"))
    #expect(runSmelt(["verify", output]).status == 1, "an interrupted output never verifies")

    // A kept file changed since it was recorded (same size) is rewritten, not reused.
    let kept = try #require(names.first { $0.hasSuffix(".safetensors") })
    var bytes = Array(FileManager.default.contents(atPath: output + "/" + kept) ?? Data())
    bytes[bytes.count - 1] ^= 0x40
    Fixture.write(bytes, to: output + "/" + kept)

    // Without --resume the half-finished directory is refused; with it the run completes identically.
    #expect(runSmelt(["convert", input, output] + Self.convertArguments).status == 1)
    let resumed = runSmelt(["convert", input, output, "--resume", "--to", "fp8-block", "--max-shard-size", "12KB"])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(resumed.stderr.contains("resumed: reused"), "\(resumed.stderr)")
    // In process, both manifests record this test process's arguments; only the output path differs.
    #expect(Self.withoutManifest(Fixture.hashes(output)) == Self.withoutManifest(Fixture.hashes(reference)))
    #expect(runSmelt(["verify", output, "--deep"]).status == 0)
    #expect(Fixture.hashes(input) == inputBefore, "the input was modified")
  }

  /// Everything but the manifest (for runs whose recorded command lines differ).
  static func withoutManifest(_ hashes: [String: String]) -> [String: String] {
    hashes.filter { $0.key != "smelt-manifest.json" }
  }

  @Test("SIGKILL at random moments, then --resume: byte-identical to an uninterrupted run")
  func killAndResume() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("kill")
    defer { scratch.remove() }
    let input = try Self.checkpointWithBigLastFile(scratch)
    let inputBefore = Fixture.hashes(input)
    let output = scratch.join("out")
    let arguments = [input, output] + Self.convertArguments
    // The reference: an uninterrupted run of the same command into the same path.
    try #require(runSmelt(["convert"] + arguments).status == 0)
    let reference = Fixture.hashes(output)
    var generator = SplitMix64(seed: 7)
    for attempt in 0..<2 {
      try FileManager.default.removeItem(atPath: output)
      let delay = Double(generator.next() % 150) / 1000
      try shell("\(smelt) convert \(arguments.joined(separator: " ")) & pid=$!; sleep \(delay); kill -KILL $pid; wait $pid; true")
      let resumed = runSmelt(["convert", "--resume"] + arguments)
      #expect(resumed.status == 0, "attempt \(attempt) (kill after \(delay) s): \(resumed.stderr)")
      // Every file, the manifest included (it does not record --resume).
      #expect(Fixture.hashes(output) == reference, "attempt \(attempt) (kill after \(delay) s)")
      #expect(!Fixture.names(output).contains { $0.hasPrefix(".smelt") || $0.hasSuffix(".smelt-tmp") })
    }
    #expect(Fixture.hashes(input) == inputBefore, "the input was modified")
  }

  @Test("SIGINT/SIGTERM during a conversion: exit 130, temporary files removed, --resume completes")
  func interrupt() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("interrupt")
    defer { scratch.remove() }
    let input = try Self.checkpointWithBigLastFile(scratch)
    let output = scratch.join("out")
    let arguments = ([input, output] + Self.convertArguments).joined(separator: " ")
    for (signal, delay) in [("INT", "0.05"), ("TERM", "0.1")] {
      try? FileManager.default.removeItem(atPath: output)
      // Job control on, so the background job does not start with SIGINT ignored (POSIX shells do that).
      let result = try shell("set -m; \(smelt) convert \(arguments) & pid=$!; sleep \(delay); kill -\(signal) $pid; wait $pid")
      let names = Fixture.names(output)
      #expect(!names.contains { $0.hasSuffix(".smelt-tmp") }, "\(signal): \(names)")
      if result.status == 130 {
        #expect(result.stderr.contains("Interrupted."))
        #expect(!names.contains("smelt-manifest.json"))
        #expect(runSmelt(["convert", "--resume", input, output] + Self.convertArguments).status == 0)
      } else {
        #expect(result.status == 0, "\(signal): \(result.stderr)")  // finished before the signal
      }
      #expect(runSmelt(["verify", output, "--deep"]).status == 0, "\(signal)")
    }
  }

  @Test("leftovers of a killed run without a journal: --resume rewrites everything identically")
  func resumeAfterLeftovers() throws {
    let scratch = ScratchDirectory("resume")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("out")
    let arguments = [input, output] + Self.convertArguments
    try #require(runSmelt(["convert"] + arguments).status == 0)
    let reference = Fixture.hashes(output)
    // Leftovers of a killed run: a temporary file, no manifest, no index; --resume without a journal
    // rewrites everything and produces the same bytes.
    try FileManager.default.removeItem(atPath: output + "/smelt-manifest.json")
    try FileManager.default.removeItem(atPath: output + "/model.safetensors.index.json")
    Fixture.write(Array("partial".utf8), to: output + "/.model-00002-of-00004.safetensors.smelt-tmp")
    let resumed = runSmelt(["convert", "--resume"] + arguments)
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(Fixture.hashes(output) == reference)
  }

  @Test("output directory rules: non-empty refused without --force/--resume; OUT equal to or inside IN refused")
  func outputDirectoryRules() throws {
    let scratch = ScratchDirectory("rules")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let inputBefore = Fixture.hashes(input)
    let output = scratch.join("out")
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    Fixture.write("keep me", to: output + "/notes.txt")
    var result = runSmelt(["convert", input, output, "--to", "bf16"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("is not empty") && result.stderr.contains("notes.txt") && result.stderr.contains("--force"))
    result = runSmelt(["convert", input, output, "--to", "bf16", "--force", "-q"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(runSmelt(["verify", output]).status == 1, "notes.txt is not in the manifest")

    try FileManager.default.createSymbolicLink(atPath: scratch.join("link-to-in"), withDestinationPath: input)
    for bad in [input, input + "/", input + "/sub", input + "/sub/deeper", scratch.join("link-to-in"), scratch.join("link-to-in/x"), scratch.path + "/in/../in"] {
      result = runSmelt(["convert", input, bad, "--to", "bf16"])
      #expect(result.status == 1, "\(bad)")
      #expect(result.stderr.contains("inside it"), "\(bad): \(result.stderr)")
    }
    // smelt shard obeys the same rule (its device directories would land inside the input).
    result = runSmelt(["shard", input, input + "/shards", "--devices", "2"])
    #expect(result.status == 1 && result.stderr.contains("inside it"), "\(result.stderr)")
    // A single-file input: its directory is the input.
    result = runSmelt(["convert", input + "/model-00001-of-00002.safetensors", input + "/out", "--to", "bf16"])
    #expect(result.status == 1)
    #expect(Fixture.hashes(input) == inputBefore, "the input was modified")
    #expect(!FileManager.default.fileExists(atPath: input + "/sub"))
    #expect(!FileManager.default.fileExists(atPath: input + "/shards"))
  }

  @Test("short files: a read past the end is an error naming the offset, never silently short")
  func shortRead() throws {
    let scratch = ScratchDirectory("short-read")
    defer { scratch.remove() }
    let path = scratch.join("short.bin")
    Fixture.write([UInt8](repeating: 7, count: 100), to: path)
    let descriptor = try FileDescriptor.open(path, .readOnly)
    defer { descriptor.close() }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
    defer { buffer.deallocate() }
    try descriptor.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<36]), at: 64)
    #expect(throws: SystemError.self) { try descriptor.read(into: buffer, at: 64) }
    do { try descriptor.read(into: buffer, at: 64) } catch { #expect("\(error)".contains("file ends at byte 100")) }
  }

  @Test("a second writer of the same output directory refuses with 'in use'")
  func concurrentWriter() throws {
    let scratch = ScratchDirectory("lock")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("out")
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let lock = try DirectoryLock(directory: output)
    let result = runSmelt(["convert", input, output, "--to", "fp8-block"])
    let resumed = runSmelt(["convert", input, output, "--to", "fp8-block", "--resume"])
    lock.release()
    for attempt in [result, resumed] {
      #expect(attempt.status == 1)
      #expect(attempt.stderr.contains("is in use by another smelt process"), "\(attempt.stderr)")
    }
    expectNoPartialOutput(output, "locked")
    #expect(runSmelt(["convert", input, output, "--to", "fp8-block", "-q"]).status == 0, "free again after release")
  }

  @Test("a second process is refused while the first is writing")
  func concurrentProcesses() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("lock-process")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("out")
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    // The holder: a process that takes the same flock the way DirectoryLock does and keeps it until
    // terminated (exec, so terminating the shell's pid ends the holder itself).
    let holder = Process()
    holder.executableURL = URL(fileURLWithPath: "/bin/bash")
    holder.arguments = ["-c", "exec 9>\(output)/.smelt.lock; flock -x 9; echo locked; exec sleep 30"]
    let ready = Pipe()
    holder.standardOutput = ready
    try holder.run()
    _ = ready.fileHandleForReading.availableData
    let result = try shell("\(smelt) convert \(input) \(output) --to bf16")
    kill(holder.processIdentifier, SIGKILL)
    holder.waitUntilExit()
    #expect(result.status == 1)
    #expect(result.stderr.contains("in use by another smelt process"), "\(result.stderr)")
  }
}
