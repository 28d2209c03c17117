import TensorCore

/// What one process of a job needs, known before it starts: the CPUs it uses and its peak resident set.
///
/// Each job computes its plan from what it will hold at once (per-worker scratch buffers, the largest
/// tensors decoded whole, a plan's own tables); nothing is read from the data. A scheduler request adds
/// `margin` on top (allocator slack, the page tables of large mappings), so that a part never meets an
/// out-of-memory kill for being a few megabytes over.
public struct ResourcePlan: Sendable, Equatable {
  /// Worker threads the process runs.
  public var cpus: Int
  /// Peak resident set the process may reach, in bytes.
  public var peakResidentBytes: Int

  public init(cpus: Int, peakResidentBytes: Int) {
    self.cpus = max(1, cpus)
    self.peakResidentBytes = max(0, peakResidentBytes)
  }

  /// The resident set of the program itself before it plans anything: the executable, the Swift runtime,
  /// libc, the thread stacks (measured: ~12 MiB on Linux x86-64; rounded up).
  public static let programBytes = 32 << 20

  /// The request's allowance above the plan: 25% plus 64 MiB.
  public var requestBytes: Int { peakResidentBytes + peakResidentBytes / 4 + (64 << 20) }

  /// `--mem` for Slurm: the request in whole mebibytes (`1536M`).
  public var slurmMemory: String { "\((requestBytes + (1 << 20) - 1) >> 20)M" }

  /// A plan covering both: the more CPUs and the larger peak.
  public func union(_ other: ResourcePlan) -> ResourcePlan {
    ResourcePlan(cpus: max(cpus, other.cpus), peakResidentBytes: max(peakResidentBytes, other.peakResidentBytes))
  }

  /// `2 CPUs, peak 310 MiB`.
  public var summary: String { "\(cpus) CPU(s), peak resident set \(ByteCount.formatted(peakResidentBytes))" }
}
