import JobParts

/// What one process writes of a conversion plan: every file (a single run), or one part's share of a split
/// job (`--part I/N`). The writer never sees parts: it is given the files to write whole and, for files
/// other parts write too, the jobs of this share.
public struct ConversionShare: Sendable, Equatable {
  /// Indices into `plan.files` written whole.
  public var wholeFiles: [Int]
  /// Files several parts write: the file and this share's jobs (indices into `plan.jobs`) in it.
  public var sharedFiles: [SharedFile]

  public struct SharedFile: Sendable, Equatable {
    public var file: Int
    public var jobs: [Int]
  }

  public init(wholeFiles: [Int], sharedFiles: [SharedFile] = []) {
    self.wholeFiles = wholeFiles
    self.sharedFiles = sharedFiles
  }

  /// The jobs this share converts, in file order.
  public func jobs(in plan: ConversionPlan) -> [Int] {
    var result: [Int] = []
    var shared = Dictionary(uniqueKeysWithValues: sharedFiles.map { ($0.file, $0.jobs) })
    for (index, file) in plan.files.enumerated() {
      if wholeFiles.contains(index) { result += file.jobs } else if let jobs = shared.removeValue(forKey: index) { result += jobs }
    }
    return result
  }
}

/// How a plan's files are split between the parts of a job.
public struct ConversionPartition: Sendable {
  /// Per file (parallel to `plan.files`): the part of each of its jobs (0-based), in the file's job order.
  public let jobParts: [[Int]]
  public let partCount: Int

  /// Whether file `index` is written by one part only, and which.
  public func owner(ofFile index: Int) -> Int? {
    let parts = Set(jobParts[index])
    return parts.count <= 1 ? (parts.first ?? 0) : nil
  }

  /// The parts writing file `index`.
  public func parts(ofFile index: Int) -> [Int] { Set(jobParts[index]).sorted() }

  /// Part `part`'s share.
  public func share(of part: Int, in plan: ConversionPlan) -> ConversionShare {
    var share = ConversionShare(wholeFiles: [])
    for (index, file) in plan.files.enumerated() {
      let mine = zip(file.jobs, jobParts[index]).filter { $0.1 == part }.map(\.0)
      guard !mine.isEmpty else { continue }
      if owner(ofFile: index) == part {
        share.wholeFiles.append(index)
      } else {
        share.sharedFiles.append(.init(file: index, jobs: mine))
      }
    }
    return share
  }
}

extension ConversionPlan {
  /// A job's bytes of work: what it reads plus what it writes (a cast of FP8 to BF16 writes twice what it
  /// reads; a 4-bit quantization reads four times what it writes).
  public func workBytes(ofJob index: Int) -> Int { jobs[index].sourceByteCount + jobs[index].outputByteCount }

  /// The split of this plan into `partCount` parts, balanced by bytes of work: whole files when that is
  /// balanced enough, else runs of jobs that may cut a file (`PartBalancer`). A pure function of the plan.
  public func partition(partCount: Int) -> ConversionPartition {
    var costs: [Int] = []
    var fileOfUnit: [Int] = []
    for (index, file) in files.enumerated() {
      for job in file.jobs {
        costs.append(workBytes(ofJob: job))
        fileOfUnit.append(index)
      }
    }
    let assignment = PartBalancer.assign(unitCosts: costs, fileOfUnit: fileOfUnit, partCount: partCount)
    var jobParts: [[Int]] = []
    var next = 0
    for file in files {
      jobParts.append(Array(assignment[next..<(next + file.jobs.count)]))
      next += file.jobs.count
    }
    return ConversionPartition(jobParts: jobParts, partCount: partCount)
  }

  /// Everything, for a single run.
  public var wholeShare: ConversionShare { ConversionShare(wholeFiles: Array(files.indices)) }

  /// The share of `part` (the whole plan for `.whole`).
  public func share(of part: JobPart) -> ConversionShare {
    part.isWhole ? wholeShare : partition(partCount: part.count).share(of: part.index, in: self)
  }
}
