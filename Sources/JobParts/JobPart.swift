import SystemIO
import TensorCore

/// Which share of a job one process does: part `index` (0-based) of `count`.
///
/// A long job (`convert`, `shard`, `validate`) split over N processes runs the same command N times with
/// `--part I/N`, each writing only its share into the same output, then once with `--finalize`. The part
/// comes from the command line or from the scheduler's environment (`--part slurm`, `--part k8s/N`).
public struct JobPart: Sendable, Hashable, CustomStringConvertible {
  /// 0-based.
  public let index: Int
  public let count: Int

  /// The most parts a job may be split into (Slurm's own `MaxArraySize` default is 1001).
  public static let maximumCount = 100_000

  public init(index: Int, of count: Int) {
    precondition(count >= 1 && (0..<count).contains(index), "part \(index) of \(count)")
    self.index = index
    self.count = count
  }

  /// The whole job in one process.
  public static let whole = JobPart(index: 0, of: 1)

  public var isWhole: Bool { count == 1 }
  /// 1-based, as written on the command line and in file names.
  public var number: Int { index + 1 }
  /// `2/4`.
  public var description: String { "\(number)/\(count)" }

  /// Parses a `--part` value:
  ///
  /// - `I/N`: part I of N, 1-based (`--part ${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}` with
  ///   `--array=1-N`; `seq 1 N | xargs -P N -I{} smelt … --part {}/N`).
  /// - `slurm`: the task's position in its Slurm job array, `(SLURM_ARRAY_TASK_ID − MIN) / STEP`, of
  ///   `SLURM_ARRAY_TASK_COUNT` parts, so `--array=0-15`, `--array=1-16` and `--array=0-30:2` all work; an
  ///   array whose indices are not one evenly spaced range (`--array=1,4,9`) is refused, because a task
  ///   cannot tell its position from the environment alone.
  /// - `k8s/N` (or `kubernetes/N`): `JOB_COMPLETION_INDEX` (0-based) of a Kubernetes Indexed Job with
  ///   `completions: N` (Kubernetes does not pass the completion count to the pod).
  public static func parse(_ text: String, environment: ProcessEnvironment.Lookup = ProcessEnvironment.current)
    throws(PartError) -> JobPart
  {
    let lowered = text.lowercased()
    if lowered == "slurm" { return try slurm(environment) }
    let pieces = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard pieces.count == 2, let count = Int(pieces[1]) else { throw .malformed(text: text) }
    guard (1...maximumCount).contains(count) else { throw .countOutOfRange(text: text, count: count) }
    if ["k8s", "kubernetes"].contains(pieces[0].lowercased()) {
      guard let raw = environment("JOB_COMPLETION_INDEX") else { throw .notInKubernetesIndexedJob }
      guard let index = Int(raw), (0..<count).contains(index) else {
        throw .environmentInconsistent(
          "JOB_COMPLETION_INDEX=\(raw) is not a completion index of a job with \(count) completions (0...\(count - 1))")
      }
      return JobPart(index: index, of: count)
    }
    guard let number = Int(pieces[0]) else { throw .malformed(text: text) }
    guard (1...count).contains(number) else { throw .indexOutOfRange(text: text, count: count) }
    return JobPart(index: number - 1, of: count)
  }

  /// The part of a Slurm array task (see `parse`).
  static func slurm(_ environment: ProcessEnvironment.Lookup) throws(PartError) -> JobPart {
    guard let rawID = environment("SLURM_ARRAY_TASK_ID") else { throw .notInSlurmArray }
    func integer(_ name: String) throws(PartError) -> Int? {
      guard let raw = environment(name) else { return nil }
      guard let value = Int(raw) else { throw .environmentInconsistent("\(name)=\(raw) is not an integer") }
      return value
    }
    guard let id = Int(rawID) else { throw .environmentInconsistent("SLURM_ARRAY_TASK_ID=\(rawID) is not an integer") }
    guard let count = try integer("SLURM_ARRAY_TASK_COUNT"), (1...maximumCount).contains(count) else {
      throw .environmentInconsistent("SLURM_ARRAY_TASK_COUNT is missing or out of range (Slurm sets it for array tasks since 17.02)")
    }
    let minimum = try integer("SLURM_ARRAY_TASK_MIN") ?? id
    let step = try integer("SLURM_ARRAY_TASK_STEP") ?? 1
    let maximum = try integer("SLURM_ARRAY_TASK_MAX") ?? (minimum + step * (count - 1))
    guard step >= 1, maximum == minimum + step * (count - 1), id >= minimum, (id - minimum) % step == 0,
      (id - minimum) / step < count
    else {
      throw .irregularSlurmArray(id: id, minimum: minimum, maximum: maximum, step: step, count: count)
    }
    return JobPart(index: (id - minimum) / step, of: count)
  }
}

/// A `--part` value that names no part, or a scheduler environment that does not give one.
public enum PartError: Error, Sendable, Equatable, CustomStringConvertible {
  case malformed(text: String)
  case indexOutOfRange(text: String, count: Int)
  case countOutOfRange(text: String, count: Int)
  case notInSlurmArray
  case notInKubernetesIndexedJob
  case irregularSlurmArray(id: Int, minimum: Int, maximum: Int, step: Int, count: Int)
  case environmentInconsistent(String)

  public var description: String {
    switch self {
    case .malformed(let text):
      return "--part '\(text)' is not I/N (1-based, e.g. 2/4), 'slurm' or 'k8s/N'"
    case .indexOutOfRange(let text, let count):
      return "--part '\(text)': the part number must be 1...\(count) (parts are 1-based)"
    case .countOutOfRange(let text, let count):
      return "--part '\(text)': \(count) parts is outside 1...\(JobPart.maximumCount)"
    case .notInSlurmArray:
      return "--part slurm outside a Slurm job array (SLURM_ARRAY_TASK_ID is not set): submit with sbatch --array=1-N (see --emit-sbatch), or pass --part I/N"
    case .notInKubernetesIndexedJob:
      return "--part k8s/N outside a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is not set): use completionMode: Indexed, or pass --part I/N"
    case .irregularSlurmArray(let id, let minimum, let maximum, let step, let count):
      return "Slurm array task \(id) is not on one evenly spaced range (min \(minimum), max \(maximum), step \(step), \(count) tasks): a task cannot tell its part from such an array; submit --array=1-\(count) (or 0-\(count - 1)), or pass --part I/N"
    case .environmentInconsistent(let reason):
      return "--part from the scheduler's environment: \(reason)"
    }
  }
}
