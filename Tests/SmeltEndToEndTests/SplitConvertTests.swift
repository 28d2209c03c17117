import Foundation
import SystemIO
import TensorCore
import TestSupport
import Testing

/// `convert --part I/N` + `--finalize` and `shard --part I/N --resume`: whatever N, however a part was
/// interrupted, the output is byte-identical to one run's.
@Suite("split convert and shard") struct SplitConvertTests {
  let sample = TestPaths.sample("tiny-deepseek-v3-fp8")

  /// Runs `convert ARGUMENTS` as `count` parts into `output`, then `--finalize`; returns the finalize result.
  func convertInParts(_ arguments: [String], output: String, count: Int) -> (status: Int32, stdout: String, stderr: String) {
    for part in 1...count {
      let result = runSmelt(["convert", sample, output] + arguments + ["--part", "\(part)/\(count)", "--quiet"])
      if result.status != 0 { return result }
    }
    return runSmelt(["convert", "--finalize", output, "--quiet"])
  }

  @Test(
    "convert in 1..5 parts, whole files or one file shared by every part, BF16 and int4: byte-identical to one run",
    arguments: [["--to", "bf16", "--max-shard-size", "300KB"], ["--to", "int4-g64"], ["--to", "int4-g64", "--max-shard-size", "400KB"]])
  func convertParts(_ arguments: [String]) throws {
    let scratch = ScratchDirectory("split-convert")
    defer { scratch.remove() }
    let output = scratch.join("out")
    try #require(runSmelt(["convert", sample, output] + arguments + ["--quiet"]).status == 0)
    let reference = Fixture.hashes(output)
    for count in [2, 3, 5] {
      try FileManager.default.removeItem(atPath: output)
      let finalized = convertInParts(arguments, output: output, count: count)
      #expect(finalized.status == 0, "\(count) parts: \(finalized.stderr)")
      // Every file, the manifest included: the parts record the single run's command line.
      #expect(Fixture.hashes(output) == reference, "\(count) parts of \(arguments)")
      #expect(!Fixture.names(output).contains { $0.hasPrefix(".") }, "bookkeeping left in \(Fixture.names(output))")
    }
  }

  @Test("a convert part with other options than its siblings is refused; finalize refuses unfinished parts")
  func convertSiblingsMustAgree() throws {
    let scratch = ScratchDirectory("split-convert-options")
    defer { scratch.remove() }
    let output = scratch.join("out")
    #expect(runSmelt(["convert", sample, output, "--to", "int4-g64", "--part", "1/2", "--quiet"]).status == 0)
    let other = runSmelt(["convert", sample, output, "--to", "int4-g32", "--part", "2/2", "--quiet"])
    #expect(other.status == 1)
    #expect(other.stderr.contains("other options than its siblings"), "\(other.stderr)")
    let recount = runSmelt(["convert", sample, output, "--to", "int4-g64", "--part", "2/3", "--quiet"])
    #expect(recount.status == 1, "\(recount.stderr)")
    let early = runSmelt(["convert", "--finalize", output])
    #expect(early.status == 1)
    #expect(early.stderr.contains("have not finished"), "\(early.stderr)")
    let single = runSmelt(["convert", sample, output, "--to", "int4-g64", "--quiet"])
    #expect(single.status == 1, "a single run must not write into a split job's directory")
  }

  @Test("a convert part whose output was damaged after it finished is refused by --finalize, naming the file")
  func finalizeChecksReceipts() throws {
    let scratch = ScratchDirectory("split-convert-damage")
    defer { scratch.remove() }
    let output = scratch.join("out")
    let arguments = ["--to", "bf16", "--max-shard-size", "300KB"]
    for part in 1...2 {
      #expect(runSmelt(["convert", sample, output] + arguments + ["--part", "\(part)/2", "--quiet"]).status == 0)
    }
    let victim = try #require(Fixture.names(output).first { $0.hasSuffix(".safetensors") })
    let path = output + "/" + victim
    var bytes = try FileSystem.readFile(path)
    bytes[bytes.count - 1] ^= 0xFF
    try FileSystem.writeFileAtomically(bytes, to: path)
    let finalized = runSmelt(["convert", "--finalize", output])
    #expect(finalized.status == 1)
    #expect(finalized.stderr.contains(victim), "\(finalized.stderr)")
  }

  @Test("a convert part SIGKILLed at random moments and rerun with --resume: byte-identical to one run")
  func convertPartKilled() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("split-convert-kill")
    defer { scratch.remove() }
    let input = try CrashSafetyTests.checkpointWithBigLastFile(scratch)
    let output = scratch.join("out")
    // Small files (whole-file shares) and one shared file, so both kinds of share are interrupted.
    for arguments in [CrashSafetyTests.convertArguments, ["--to", "fp8-block", "-q"]] {
      try? FileManager.default.removeItem(atPath: output)
      try #require(runSmelt(["convert", input, output] + arguments).status == 0)
      let reference = Fixture.hashes(output)
      var generator = SplitMix64(seed: 11)
      for attempt in 0..<2 {
        try FileManager.default.removeItem(atPath: output)
        let delay = Double(generator.next() % 150) / 1000
        let part = ([smelt, "convert", input, output] + arguments + ["--part", "1/2"]).joined(separator: " ")
        _ = try shell("\(part) & pid=$!; sleep \(delay); kill -KILL $pid; wait $pid; true")
        let resumed = runSmelt(["convert", input, output] + arguments + ["--part", "1/2", "--resume"])
        #expect(resumed.status == 0, "attempt \(attempt) (kill after \(delay) s): \(resumed.stderr)")
        #expect(runSmelt(["convert", input, output] + arguments + ["--part", "2/2"]).status == 0)
        // A finished part rerun (a requeue of a task that had succeeded) changes nothing.
        #expect(runSmelt(["convert", input, output] + arguments + ["--part", "2/2", "--resume"]).status == 0)
        let finalized = runSmelt(["convert", "--finalize", output])
        #expect(finalized.status == 0, "attempt \(attempt): \(finalized.stderr)")
        #expect(Fixture.hashes(output) == reference, "attempt \(attempt) (kill after \(delay) s) of \(arguments)")
      }
    }
  }

  @Test("shard --devices 4 in 3 parts, one killed and rerun with --resume: byte-identical to one run")
  func shardPartsResume() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("split-shard")
    defer { scratch.remove() }
    let output = scratch.join("out")
    let arguments = ["--devices", "4", "--max-shard-size", "200KB", "--quiet"]
    try #require(runSmelt(["shard", sample, output] + arguments).status == 0)
    let reference = Fixture.hashes(output)
    try FileManager.default.removeItem(atPath: output)
    let part = ([smelt, "shard", sample, output] + arguments + ["--part", "1/3"]).joined(separator: " ")
    _ = try shell("\(part) & pid=$!; sleep 0.05; kill -KILL $pid; wait $pid; true")
    // What a part killed while storing the plan leaves (the kill above lands anywhere): not "another job's" file.
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    try Data([1, 2, 3]).write(to: URL(fileURLWithPath: output + "/.smelt-shard-plan.4242.17.smelt-tmp"))
    #expect(runSmelt(["shard", sample, output] + arguments + ["--part", "1/3", "--resume"]).status == 0)
    let receipt = output + "/.smelt-shard-part-1-of-3.json"
    let first = try FileSystem.readFile(receipt)
    // Rerun again: every file is kept, the receipt is the same.
    let again = runSmelt(["shard", sample, output] + arguments + ["--part", "1/3", "--resume"])
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try FileSystem.readFile(receipt) == first)
    for number in 2...3 {
      #expect(runSmelt(["shard", sample, output] + arguments + ["--part", "\(number)/3"]).status == 0)
    }
    // A temporary file of a writer killed mid-write: --finalize removes it under the exclusive lock.
    try Data([1, 2, 3]).write(to: URL(fileURLWithPath: output + "/1/.model-00002-of-00021.safetensors.smelt-tmp"))
    let finalized = runSmelt(["shard", "--finalize", output, "--quiet"])
    #expect(finalized.status == 0, "\(finalized.stderr)")
    #expect(Fixture.hashes(output) == reference)
    let usage = runSmelt(["shard", sample, output, "--devices", "4", "--resume"])
    #expect(usage.status == 64, "--resume without --part")
  }

  @Test("--emit-sbatch writes an array of parts and an afterok finalize job with Smelt's own resources")
  func emitSbatch() throws {
    let scratch = ScratchDirectory("split-sbatch")
    defer { scratch.remove() }
    for (job, arguments) in [("convert", ["--to", "bf16"]), ("shard", ["--devices", "4"])] {
      let script = scratch.join("\(job).sbatch")
      let result = runSmelt([job, sample, scratch.join("out-\(job)")] + arguments + ["--emit-sbatch", script, "--parts", "4", "--cpus-per-task", "2"])
      #expect(result.status == 0, "\(job): \(result.stderr)")
      let text = String(decoding: try FileSystem.readFile(script), as: UTF8.self)
      #expect(text.contains("#SBATCH --array=1-4"), "\(job)")
      #expect(text.contains("#SBATCH --cpus-per-task=2"), "\(job)")
      #expect(text.contains("#SBATCH --mem="), "\(job)")
      #expect(text.contains("#SBATCH --requeue"), "\(job)")
      #expect(text.contains("--dependency=afterok:"), "\(job)")
      #expect(text.contains("\(job) --finalize \(scratch.join("out-\(job)"))"), "\(job)")
      #expect(text.contains("--part slurm --resume"), "\(job)")
      #expect(!FileSystem.exists(scratch.join("out-\(job)")), "\(job): a script is written, nothing else")
    }
  }
}
