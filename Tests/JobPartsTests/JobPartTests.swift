import SystemIO
import JobParts
import TensorCore
import Testing

@Suite struct JobPartParsing {
  let none = ProcessEnvironment.fixed([:])

  @Test func oneBasedIOfN() throws {
    #expect(try JobPart.parse("1/4", environment: none) == JobPart(index: 0, of: 4))
    #expect(try JobPart.parse("4/4", environment: none) == JobPart(index: 3, of: 4))
    #expect(try JobPart.parse("1/1", environment: none).isWhole)
    #expect(JobPart(index: 2, of: 5).description == "3/5")
  }

  @Test func refusesWhatNamesNoPart() {
    for text in ["0/4", "5/4", "1/0", "a/4", "1/", "/4", "1/2/3", "", "slurmy", "1/1000000"] {
      #expect(throws: PartError.self, "\(text)") { try JobPart.parse(text, environment: none) }
    }
  }

  @Test func slurmArrayFromZeroOrOne() throws {
    func part(_ id: Int, min: Int, max: Int, count: Int, step: Int = 1) throws -> JobPart {
      try JobPart.parse(
        "slurm",
        environment: ProcessEnvironment.fixed([
          "SLURM_ARRAY_TASK_ID": "\(id)", "SLURM_ARRAY_TASK_MIN": "\(min)", "SLURM_ARRAY_TASK_MAX": "\(max)",
          "SLURM_ARRAY_TASK_COUNT": "\(count)", "SLURM_ARRAY_TASK_STEP": "\(step)",
        ]))
    }
    #expect(try part(0, min: 0, max: 3, count: 4) == JobPart(index: 0, of: 4))
    #expect(try part(3, min: 0, max: 3, count: 4) == JobPart(index: 3, of: 4))
    #expect(try part(1, min: 1, max: 16, count: 16) == JobPart(index: 0, of: 16))
    #expect(try part(16, min: 1, max: 16, count: 16) == JobPart(index: 15, of: 16))
    // --array=0-30:2 is 16 tasks 0, 2, ..., 30.
    #expect(try part(8, min: 0, max: 30, count: 16, step: 2) == JobPart(index: 4, of: 16))
  }

  @Test func slurmIrregularArraysAreRefused() {
    // --array=1,4,9: evenly spaced it is not (Slurm reports step 1 and count 3, max 9).
    let environment = ProcessEnvironment.fixed([
      "SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "9",
      "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_STEP": "1",
    ])
    #expect(throws: PartError.irregularSlurmArray(id: 4, minimum: 1, maximum: 9, step: 1, count: 3)) {
      try JobPart.parse("slurm", environment: environment)
    }
  }

  @Test func slurmOutsideAnArrayIsRefused() {
    #expect(throws: PartError.notInSlurmArray) { try JobPart.parse("slurm", environment: none) }
    #expect(throws: PartError.self) {
      try JobPart.parse("slurm", environment: ProcessEnvironment.fixed(["SLURM_ARRAY_TASK_ID": "2"]))
    }
  }

  @Test func kubernetesIndexedJob() throws {
    let environment = ProcessEnvironment.fixed(["JOB_COMPLETION_INDEX": "7"])
    #expect(try JobPart.parse("k8s/16", environment: environment) == JobPart(index: 7, of: 16))
    #expect(try JobPart.parse("kubernetes/8", environment: environment) == JobPart(index: 7, of: 8))
    #expect(throws: PartError.self) { try JobPart.parse("k8s/7", environment: environment) }
    #expect(throws: PartError.notInKubernetesIndexedJob) { try JobPart.parse("k8s/16", environment: none) }
  }

  @Test func slurmCPUsBoundTheThreadCount() {
    #expect(Parallel.threadCount(environment: ProcessEnvironment.fixed(["SLURM_CPUS_PER_TASK": "3"])) == 3)
    #expect(
      Parallel.threadCount(environment: ProcessEnvironment.fixed(["SLURM_CPUS_PER_TASK": "3", "SMELT_THREADS": "5"])) == 5)
  }
}

@Suite struct Balancing {
  @Test func wholeFilesLargestFirst() {
    // One expert-heavy file four times the others: it gets a part to itself.
    #expect(PartBalancer.assignWholeFiles(costs: [4, 1, 1, 1, 1], partCount: 2) == [0, 1, 1, 1, 1])
  }

  @Test func keepsFilesWholeWhenThatIsBalanced() {
    let costs = [Int](repeating: 5, count: 16)
    let assignment = PartBalancer.assign(unitCosts: costs, fileOfUnit: Array(0..<16), partCount: 4)
    #expect(PartBalancer.largestLoad(assignment, costs, 4) == 20)
  }

  @Test func cutsOneFileIntoRunsOfUnits() {
    // One file of 12 units, 4 parts: 3 consecutive units each.
    let costs = [Int](repeating: 10, count: 12)
    let assignment = PartBalancer.assign(unitCosts: costs, fileOfUnit: [Int](repeating: 0, count: 12), partCount: 4)
    #expect(assignment == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
  }

  @Test func cutsAtAFileBoundaryWhenOneIsNear() {
    // Files of 7 and 5 units (cost 1 each) into 2 parts: whole files (7 | 5) are 17% over the ideal 6, and
    // the file boundary is 1 unit from the ideal cut, more than 10% of a share: cut inside the first file.
    let costs = [Int](repeating: 1, count: 12)
    let files = [Int](repeating: 0, count: 7) + [Int](repeating: 1, count: 5)
    #expect(PartBalancer.assign(unitCosts: costs, fileOfUnit: files, partCount: 2) == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    // With 25% tolerance whole files are good enough (7 | 5): no file is shared.
    #expect(
      PartBalancer.assign(unitCosts: costs, fileOfUnit: files, partCount: 2, tolerance: 0.25)
        == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
  }

  @Test func aUnitLargerThanAShareIsNotSplit() {
    // No split beats the 100-byte unit: whole files are kept.
    let assignment = PartBalancer.assign(unitCosts: [100, 1, 1, 1], fileOfUnit: [0, 1, 1, 1], partCount: 4)
    #expect(PartBalancer.largestLoad(assignment, [100, 1, 1, 1], 4) == 100)
  }

  @Test func morePartsThanUnitsLeavesSomeEmpty() {
    let assignment = PartBalancer.assign(unitCosts: [3, 3], fileOfUnit: [0, 0], partCount: 4)
    #expect(Set(assignment).count == 2)
    #expect(assignment.sorted() == assignment)
  }

  @Test func sameInputsSameAssignment() {
    var generator = SplitMix64(seed: 7)
    let costs = (0..<500).map { _ in Int(generator.next() % 1000) + 1 }
    let files = (0..<500).map { $0 / 37 }
    let a = PartBalancer.assign(unitCosts: costs, fileOfUnit: files, partCount: 16)
    let b = PartBalancer.assign(unitCosts: costs, fileOfUnit: files, partCount: 16)
    #expect(a == b)
    let ideal = Double(costs.reduce(0, +)) / 16
    #expect(Double(PartBalancer.largestLoad(a, costs, 16)) <= ideal * 1.1 + 1000)
  }
}
