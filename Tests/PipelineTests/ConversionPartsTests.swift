import Checkpoint
import Pipeline
import TensorCore
import TestSupport
import Testing

@Suite("conversion parts") struct ConversionPartsTests {
  let checkpoint: Checkpoint

  init() throws { checkpoint = try Checkpoint.open(TestPaths.sample("tiny-deepseek-v3-fp8")) }

  @Test(
    "every job is in exactly one part, parts are balanced by bytes of work, and the split is a function of the plan",
    arguments: [300_000, OutputSharding.defaultMaxShardByteCount])
  func partitionByWork(maxShardByteCount: Int) throws {
    let plan = try ConversionPlan(checkpoint: checkpoint, target: .cast(.bfloat16), maxShardByteCount: maxShardByteCount)
    let largestJob = plan.jobs.indices.map(plan.workBytes(ofJob:)).max() ?? 0
    for count in [1, 2, 3, 4, 7] {
      let partition = plan.partition(partCount: count)
      #expect(partition.jobParts == plan.partition(partCount: count).jobParts)
      var seen = [Int](repeating: 0, count: plan.jobs.count)
      var loads = [Int](repeating: 0, count: count)
      for part in 0..<count {
        for job in partition.share(of: part, in: plan).jobs(in: plan) {
          seen[job] += 1
          loads[part] += plan.workBytes(ofJob: job)
        }
      }
      #expect(seen.allSatisfy { $0 == 1 }, "\(count) parts")
      let total = loads.reduce(0, +)
      // Whole files within 10 % of the ideal, or cuts at the job nearest to each k·W/N.
      let bound = Int(1.1 * Double(max(total / count, largestJob))) + largestJob
      #expect((loads.max() ?? 0) <= bound, "\(count) parts: \(loads)")
      #expect(loads.allSatisfy { $0 > 0 }, "\(count) parts: an idle part in \(loads)")
    }
  }

  @Test("one output file and several parts: the file is shared, each part writes a run of its jobs")
  func oneFileIsShared() throws {
    let plan = try ConversionPlan(checkpoint: checkpoint, target: .cast(.bfloat16))
    try #require(plan.files.count == 1)
    let partition = plan.partition(partCount: 4)
    #expect(partition.owner(ofFile: 0) == nil)
    #expect(partition.parts(ofFile: 0) == [0, 1, 2, 3])
    // Runs in file order: a part's jobs are consecutive.
    #expect(partition.jobParts[0] == partition.jobParts[0].sorted())
    #expect(plan.partition(partCount: 1).owner(ofFile: 0) == 0)
  }
}
