import JSON
import JobParts
import SystemIO
import TestSupport
import Testing

@Suite struct PartsDirectoryProtocol {
  let description = JobDescription(
    job: "convert", arguments: ["smelt", "convert", "/in", "/out", "--to", "bf16"], fingerprint: "f1", partCount: 3)

  @Test func firstPartStoresTheJobOthersMustMatchIt() throws {
    let directory = PartsDirectory(try TestPaths.scratchDirectory("parts-join"))
    try directory.join(description, as: JobPart(index: 0, of: 3))
    try directory.join(description, as: JobPart(index: 1, of: 3))
    #expect(try directory.readDescription() == description)

    var other = description
    other.arguments = ["smelt", "convert", "/in", "/out", "--to", "int4-g128"]
    #expect {
      try directory.join(other, as: JobPart(index: 2, of: 3))
    } throws: { error in
      guard case PartsError.otherOptions = error else { return false }
      return "\(error)".contains("this part has int4-g128") && "\(error)".contains("the siblings have bf16")
    }
    var recount = description
    recount.partCount = 4
    #expect {
      try directory.join(recount, as: JobPart(index: 2, of: 4))
    } throws: { error in
      if case PartsError.otherPartCount(_, 3, _) = error { return true } else { return false }
    }
    var changed = description
    changed.fingerprint = "f2"
    #expect {
      try directory.join(changed, as: JobPart(index: 2, of: 3))
    } throws: { error in
      if case PartsError.inputsChanged = error { return true } else { return false }
    }
  }

  @Test func receiptsRoundTripAndFinalizeNeedsEveryPartFinished() throws {
    let directory = PartsDirectory(try TestPaths.scratchDirectory("parts-receipts"))
    try directory.join(description, as: JobPart(index: 0, of: 3))
    var receipts: [PartReceipt] = []
    for index in 0..<3 {
      let receipt = PartReceipt(
        job: "convert", fingerprint: "f1", part: JobPart(index: index, of: 3), finished: index != 1,
        outputs: [
          PartOutput(path: "model-0000\(index + 1)-of-00003.safetensors", byteCount: 100 + index, sha256: "aa\(index)"),
          PartOutput(path: "shared.safetensors", byteCount: 999, sha256: "bb", ranges: [0..<8, (10 + 10 * index)..<(15 + 10 * index)]),
        ],
        data: index == 2 ? .object(JSONObject(members: [("n", .number(JSONNumber(2)))])!) : nil)
      try directory.write(receipt)
      receipts.append(receipt)
      #expect(directory.receipt(of: receipt.part, fingerprint: "f1") == receipt)
      #expect(directory.receipt(of: receipt.part, fingerprint: "other") == nil)
    }
    #expect {
      try directory.finishedReceipts(for: description)
    } throws: { error in
      guard case PartsError.partsUnfinished(_, let parts, _) = error else { return false }
      return parts == [JobPart(index: 1, of: 3)]
    }
    receipts[1].finished = true
    try directory.write(receipts[1])
    #expect(try directory.finishedReceipts(for: description) == receipts)

    let lock = try directory.lock(JobPart(index: 1, of: 3), job: "convert")
    #expect(throws: FileLock.HeldError.self) { try directory.lock(JobPart(index: 1, of: 3), job: "convert") }
    lock.release()
    try directory.removeBookkeeping()
    #expect(try FileSystem.contents(of: directory.path).isEmpty)
    #expect(throws: PartsError.self) { try directory.readDescription() }
  }

  @Test func aReceiptOfAnotherPartCountIsRefused() throws {
    let directory = PartsDirectory(try TestPaths.scratchDirectory("parts-stray"))
    try directory.join(description, as: JobPart(index: 0, of: 3))
    try directory.write(PartReceipt(job: "convert", fingerprint: "f1", part: JobPart(index: 0, of: 2), finished: true))
    #expect(throws: PartsError.self) { try directory.finishedReceipts(for: description) }
  }

  @Test func createExclusivelyHasOneWinner() throws {
    let path = try TestPaths.scratchDirectory("parts-exclusive") + "/file"
    #expect(try FileSystem.createExclusively([1, 2, 3], at: path))
    #expect(try FileSystem.createExclusively([4], at: path) == false)
    #expect(try FileSystem.readFile(path) == [1, 2, 3])
  }
}

@Suite struct JobScripts {
  func script() throws -> ClusterScript {
    try ClusterScript(
      job: "convert", command: ["/opt/smelt/bin/smelt", "convert", "/data/in", "/data/out dir", "--to", "bf16"],
      finalizeCommand: ["/opt/smelt/bin/smelt", "convert", "--finalize", "/data/out dir"], partCount: 16,
      part: ResourcePlan(cpus: 8, peakResidentBytes: 400 << 20), finalize: ResourcePlan(cpus: 2, peakResidentBytes: 100 << 20),
      logDirectory: "/data/logs")
  }

  @Test func sbatchHasAnArrayAndAFinalizeAfterIt() throws {
    let text = try script().sbatch
    #expect(text.hasPrefix("#!/usr/bin/env bash\n"))
    #expect(text.contains("#SBATCH --array=1-16\n"))
    #expect(text.contains("#SBATCH --cpus-per-task=8\n"))
    // 400 MiB + 25% + 64 MiB.
    #expect(text.contains("#SBATCH --mem=564M\n"))
    #expect(text.contains("#SBATCH --requeue\n"))
    #expect(text.contains("--dependency=afterok:\"$parts\""))
    #expect(text.contains("exec \"${SMELT:-/opt/smelt/bin/smelt}\" convert /data/in '/data/out dir' --to bf16 --part slurm --resume\n"))
    #expect(text.contains("exec \"${SMELT:-/opt/smelt/bin/smelt}\" convert --finalize '/data/out dir'\n"))
    #expect(text.contains("#SBATCH --output=/data/logs/%x-%A_%a.log\n"))
  }

  @Test func xargsRunsEveryPartThenFinalizes() throws {
    #expect(
      try script().xargs
        == "seq 1 16 | xargs -P 16 -I{} /opt/smelt/bin/smelt convert /data/in '/data/out dir' --to bf16 --part '{}/16' && /opt/smelt/bin/smelt convert --finalize '/data/out dir'"
    )
  }

  @Test func logDirectoriesWithBlanksAreRefused() {
    #expect(throws: PartsError.self) {
      try ClusterScript(
        job: "shard", command: ["smelt"], finalizeCommand: ["smelt"], partCount: 2, part: ResourcePlan(cpus: 1, peakResidentBytes: 0),
        finalize: ResourcePlan(cpus: 1, peakResidentBytes: 0), logDirectory: "/a b")
    }
  }
}
