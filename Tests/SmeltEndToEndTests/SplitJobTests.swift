import JSON
import SystemIO
import TestSupport
import Testing

/// `--part I/N` + `--finalize`: a job split over processes ends byte-identical to one run.
@Suite("split jobs") struct SplitJobTests {
  let reference = TestPaths.sample("tiny-deepseek-v3")
  let candidate = TestPaths.sample("tiny-deepseek-v3-fp8")
  /// Tensor level plus the layer level of two layers (random inputs): seconds, not the forward passes.
  let levels = ["--layers", "0-1", "--quiet"]

  @Test("validate in 3 parts: the merged report is the single run's, byte for byte; the parts' files are gone")
  func validateParts() throws {
    let directory = try TestPaths.scratchDirectory("split-validate")
    let single = directory + "/single.json"
    let merged = directory + "/merged.json"
    let one = runSmelt(["validate", reference, candidate, "--json-file", single] + levels)
    #expect(one.status == 0, "\(one.stderr)")
    for part in 1...3 {
      let result = runSmelt(["validate", reference, candidate, "--json-file", merged, "--part", "\(part)/3"] + levels)
      #expect(result.status == 0, "\(result.stderr)")
      if part < 3 {
        let early = runSmelt(["validate", "--finalize", merged])
        #expect(early.status == 1)
        #expect(early.stderr.contains("have not finished"), "\(early.stderr)")
      }
    }
    let finalized = runSmelt(["validate", "--finalize", merged])
    #expect(finalized.status == 0, "\(finalized.stderr)")
    #expect(try FileSystem.readFile(merged) == (try FileSystem.readFile(single)))
    #expect(finalized.stdout == one.stdout)
    #expect(!FileSystem.exists(merged + ".smelt-parts"))
  }

  @Test("a validate part with other options than its siblings is refused, naming the difference")
  func validateSiblingsMustAgree() throws {
    let report = try TestPaths.scratchDirectory("split-validate-options") + "/report.json"
    #expect(runSmelt(["validate", reference, candidate, "--json-file", report, "--part", "1/2"] + levels).status == 0)
    let other = runSmelt(["validate", reference, candidate, "--json-file", report, "--part", "2/2", "--seed", "7"] + levels)
    #expect(other.status == 1)
    #expect(other.stderr.contains("other options than its siblings"), "\(other.stderr)")
    #expect(other.stderr.contains("--seed 7"), "\(other.stderr)")
    let recount = runSmelt(["validate", reference, candidate, "--json-file", report, "--part", "2/3"] + levels)
    #expect(recount.status == 1)
    #expect(recount.stderr.contains("split into 2 parts"), "\(recount.stderr)")
  }

  @Test("a validate part rerun with --resume reuses what it finished and changes nothing")
  func validateResume() throws {
    let directory = try TestPaths.scratchDirectory("split-validate-resume")
    let report = directory + "/report.json"
    let single = directory + "/single.json"
    #expect(runSmelt(["validate", reference, candidate, "--json-file", single] + levels).status == 0)
    #expect(runSmelt(["validate", reference, candidate, "--json-file", report, "--part", "1/2"] + levels).status == 0)
    let receipt = report + ".smelt-parts/.smelt-part-1-of-2.json"
    let first = try FileSystem.readFile(receipt)
    // The same command, apart from how it runs (--resume, not --quiet: the log says what was reused).
    let again = runSmelt(["validate", reference, candidate, "--json-file", report, "--part", "1/2", "--resume", "--layers", "0-1"])
    #expect(again.status == 0, "\(again.stderr)")
    #expect(again.stderr.contains("resuming"), "\(again.stderr)")
    #expect(try FileSystem.readFile(receipt) == first)
    #expect(runSmelt(["validate", reference, candidate, "--json-file", report, "--part", "2/2"] + levels).status == 0)
    #expect(runSmelt(["validate", "--finalize", report, "--quiet"]).status == 0)
    #expect(try FileSystem.readFile(report) == (try FileSystem.readFile(single)))
  }

  @Test("--part slurm outside an array, and --part with --json (stdout) instead of --json-file REPORT, are usage errors")
  func validateUsage() {
    let outside = runSmelt(["validate", reference, candidate, "--json-file", "/tmp/x.json", "--part", "slurm"])
    #expect(outside.status == 64)
    #expect(outside.stderr.contains("SLURM_ARRAY_TASK_ID"))
    let stdout = runSmelt(["validate", reference, candidate, "--json", "--part", "1/2"])
    #expect(stdout.status == 64)
    #expect(stdout.stderr.contains("need --json-file REPORT"), "\(stdout.stderr)")
  }
}
