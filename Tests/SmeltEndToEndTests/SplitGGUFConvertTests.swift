import Foundation
import SystemIO
import TensorCore
import TestSupport
import Testing

/// `convert IN OUT.gguf --to gguf-<preset> --part I/N` + `--finalize OUT.gguf`: whatever N, however a part
/// was interrupted, the GGUF file (or split set) is byte-identical to one run's.
@Suite("split GGUF convert") struct SplitGGUFConvertTests {
  let sample = TestPaths.sample("tiny-deepseek-v3-fp8")

  /// Runs `convert sample OUTPUT ARGUMENTS` as `count` parts, then `--finalize`; returns the first failure
  /// or the finalize result.
  func convertInParts(_ arguments: [String], output: String, count: Int) -> (status: Int32, stdout: String, stderr: String) {
    for part in 1...count {
      let result = runSmelt(["convert", sample, output] + arguments + ["--part", "\(part)/\(count)", "--quiet"])
      if result.status != 0 { return result }
    }
    return runSmelt(["convert", "--finalize", output, "--quiet"])
  }

  @Test(
    "GGUF convert in 1, 2 and 3 parts, one file shared by the parts or a --max-shard-size set: byte-identical to one run",
    arguments: [["--to", "gguf-q8_0"], ["--to", "gguf-q8_0", "--max-shard-size", "1MB"]])
  func ggufParts(_ arguments: [String]) throws {
    let scratch = ScratchDirectory("split-gguf")
    defer { scratch.remove() }
    let directory = scratch.join("out")
    try FileSystem.createDirectory(directory)
    let output = directory + "/model.gguf"
    try #require(runSmelt(["convert", sample, output] + arguments + ["--quiet"]).status == 0)
    let reference = Fixture.hashes(directory)
    try #require(!reference.isEmpty)
    for count in [1, 2, 3] {
      try FileManager.default.removeItem(atPath: directory)
      try FileSystem.createDirectory(directory)
      let result =
        count == 1
        ? runSmelt(["convert", sample, output] + arguments + ["--part", "1/1", "--quiet"])
        : convertInParts(arguments, output: output, count: count)
      #expect(result.status == 0, "\(count) parts: \(result.stderr)")
      #expect(Fixture.hashes(directory) == reference, "\(count) parts of \(arguments)")
      #expect(
        !Fixture.names(directory).contains { $0.hasPrefix(".") || $0.hasSuffix(".smelt-parts") },
        "bookkeeping left in \(Fixture.names(directory))")
    }
  }

  @Test("a GGUF part with other options than its siblings is refused; finalize refuses unfinished parts and a damaged share")
  func ggufSiblingsMustAgree() throws {
    let scratch = ScratchDirectory("split-gguf-options")
    defer { scratch.remove() }
    let output = scratch.join("model.gguf")
    #expect(runSmelt(["convert", sample, output, "--to", "gguf-q8_0", "--part", "1/2", "--quiet"]).status == 0)
    for other in [["--to", "gguf-q4_0"], ["--to", "gguf-q8_0", "--drop-mtp"]] {
      let refused = runSmelt(["convert", sample, output] + other + ["--part", "2/2", "--quiet"])
      #expect(refused.status == 1, "\(other)")
      #expect(refused.stderr.contains("other options than its siblings"), "\(refused.stderr)")
    }
    let recount = runSmelt(["convert", sample, output, "--to", "gguf-q8_0", "--part", "2/3", "--quiet"])
    #expect(recount.status == 1, "\(recount.stderr)")
    let early = runSmelt(["convert", "--finalize", output])
    #expect(early.status == 1)
    #expect(early.stderr.contains("have not finished"), "\(early.stderr)")
    let single = runSmelt(["convert", sample, output, "--to", "gguf-q8_0", "--quiet"])
    #expect(single.status != 0, "a single run must not write the file of a split job")
    #expect(runSmelt(["convert", sample, output, "--to", "gguf-q8_0", "--part", "2/2", "--quiet"]).status == 0)
    // The file both parts write lies under its shared temporary name until --finalize: damage part 2's bytes.
    let shared = scratch.join(".model.gguf.smelt-shared")
    var bytes = try FileSystem.readFile(shared)
    bytes[bytes.count - 1] ^= 0xFF
    try FileSystem.writeFileAtomically(bytes, to: shared)
    let damaged = runSmelt(["convert", "--finalize", output])
    #expect(damaged.status == 1)
    #expect(damaged.stderr.contains("model.gguf") && damaged.stderr.contains("part 2/2"), "\(damaged.stderr)")
    #expect(!FileSystem.exists(output), "a damaged file must not be published")
  }

  @Test("a GGUF part SIGKILLed at random moments and rerun with --resume: byte-identical to one run")
  func ggufPartKilled() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("split-gguf-kill")
    defer { scratch.remove() }
    let directory = scratch.join("out")
    let output = directory + "/model.gguf"
    // One file shared by both parts, and a split set (whole files and shared ones).
    for arguments in [["--to", "gguf-q8_0"], ["--to", "gguf-q8_0", "--max-shard-size", "1MB"]] {
      try? FileManager.default.removeItem(atPath: directory)
      try FileSystem.createDirectory(directory)
      try #require(runSmelt(["convert", sample, output] + arguments + ["--quiet"]).status == 0)
      let reference = Fixture.hashes(directory)
      var generator = SplitMix64(seed: 13)
      for attempt in 0..<2 {
        try FileManager.default.removeItem(atPath: directory)
        try FileSystem.createDirectory(directory)
        let delay = Double(generator.next() % 1500) / 1000
        let part = ([smelt, "convert", sample, output] + arguments + ["--part", "1/2", "-q"]).joined(separator: " ")
        _ = try shell("\(part) & pid=$!; sleep \(delay); kill -KILL $pid; wait $pid; true")
        let resumed = runSmelt(["convert", sample, output] + arguments + ["--part", "1/2", "--resume", "--quiet"])
        #expect(resumed.status == 0, "attempt \(attempt) (kill after \(delay) s): \(resumed.stderr)")
        #expect(runSmelt(["convert", sample, output] + arguments + ["--part", "2/2", "--quiet"]).status == 0)
        // A finished part rerun (a requeued task that had succeeded) changes nothing.
        #expect(runSmelt(["convert", sample, output] + arguments + ["--part", "2/2", "--resume", "--quiet"]).status == 0)
        let finalized = runSmelt(["convert", "--finalize", output, "--quiet"])
        #expect(finalized.status == 0, "attempt \(attempt): \(finalized.stderr)")
        #expect(Fixture.hashes(directory) == reference, "attempt \(attempt) (kill after \(delay) s) of \(arguments)")
      }
    }
  }

  @Test("--emit-sbatch for a GGUF target writes an array of parts and an afterok finalize of OUT.gguf")
  func ggufEmitSbatch() throws {
    let scratch = ScratchDirectory("split-gguf-sbatch")
    defer { scratch.remove() }
    let script = scratch.join("gguf.sbatch")
    let output = scratch.join("model.gguf")
    let result = runSmelt(
      ["convert", sample, output, "--to", "gguf-q4_k_m", "--emit-sbatch", script, "--parts", "3", "--cpus-per-task", "2"])
    #expect(result.status == 0, "\(result.stderr)")
    let text = String(decoding: try FileSystem.readFile(script), as: UTF8.self)
    #expect(text.contains("#SBATCH --array=1-3"))
    #expect(text.contains("#SBATCH --cpus-per-task=2"))
    #expect(text.contains("#SBATCH --mem="))
    #expect(text.contains("--dependency=afterok:"))
    #expect(text.contains("convert --finalize \(output)"), "\(text)")
    #expect(text.contains("--to gguf-q4_k_m"), "\(text)")
    #expect(text.contains("--part slurm --resume"))
    #expect(!FileSystem.exists(output) && !FileSystem.exists(output + ".smelt-parts"), "a script is written, nothing else")
  }
}
