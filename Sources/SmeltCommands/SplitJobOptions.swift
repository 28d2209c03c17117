import CommandLineSupport
import JobParts
import SystemIO
import TensorCore

/// The options that split a long job (`convert`, `shard`, `validate`) over processes, and what the three
/// commands do with them alike: which part this process runs, the command line every part records, and
/// the scheduler script.
struct SplitJobOptions: Sendable {
  /// `--part`, `--emit-sbatch`, `--parts`, `--cpus-per-task` (each command declares its own `--finalize`
  /// and `--resume`, whose wording differs).
  static let arguments: [ArgumentSpec] = [
    .option(
      "part", valueName: "i/n",
      help: "Run only part I of N (1-based; 'slurm' reads the Slurm array task, 'k8s/N' a Kubernetes Indexed Job's JOB_COMPLETION_INDEX); finish with --finalize."),
    .option(
      "emit-sbatch", valueName: "file",
      help: "Write a Slurm job script (array of --parts tasks + a finalize job after them) instead of running."),
    .option("parts", valueName: "n", help: "With --emit-sbatch: the number of parts (array tasks)."),
    .option(
      "cpus-per-task", valueName: "n",
      help: "With --emit-sbatch: CPUs per part (default: SMELT_THREADS or this machine's cores); memory follows from it."),
  ]

  /// Options that change how a job runs, not what it writes: left out of the command line a job records
  /// (its manifest, its parts' job description), so one run, a resumed run and N parts record the same.
  static let executionOnly: Set<String> = [
    "part", "resume", "force", "quiet", "emit-sbatch", "parts", "cpus-per-task", "finalize", "dry-run", "json-file",
  ]

  /// This process's share (`.whole` without `--part`).
  var part: JobPart
  /// `--emit-sbatch FILE`: where to write the script, how many parts, CPUs per part.
  var script: (path: String, partCount: Int, cpus: Int)?

  /// No split: the whole job, no script.
  static let none = SplitJobOptions(part: .whole, script: nil)

  private init(part: JobPart, script: (path: String, partCount: Int, cpus: Int)?) {
    self.part = part
    self.script = script
  }

  init(arguments: ParsedArguments, environment: ProcessEnvironment.Lookup = ProcessEnvironment.current) throws {
    part = .whole
    if let text = arguments.optionalString("part") {
      do { part = try JobPart.parse(text, environment: environment) } catch { throw UsageError.invalid("\(error)") }
    }
    if let path = arguments.optionalString("emit-sbatch") {
      guard arguments.optionalString("part") == nil else {
        throw UsageError.invalid("--emit-sbatch writes the script that runs the parts; it does not go with --part")
      }
      guard let count = try arguments.optionalInt("parts", in: 1...JobPart.maximumCount) else {
        throw UsageError.invalid("--emit-sbatch needs --parts N: how many array tasks to split the job into")
      }
      let cpus = try arguments.optionalInt("cpus-per-task", in: 1...4096) ?? Parallel.defaultThreadCount
      script = (path, count, cpus)
    } else if arguments.isPresent("parts") || arguments.isPresent("cpus-per-task") {
      throw UsageError.invalid("--parts and --cpus-per-task go with --emit-sbatch FILE")
    }
  }

  /// The command line a run of `command` records: `smelt <command> <arguments>` without `executionOnly`
  /// (and the command's own `alsoExcluding`, such as convert's `--json`, which only formats stdout).
  static func recordedCommand(_ command: String, _ arguments: ParsedArguments, alsoExcluding: Set<String> = []) -> [String] {
    ["smelt", command] + arguments.commandLine(excluding: executionOnly.union(alsoExcluding))
  }

  /// The command for a job script: this executable, absolute paths (the tasks start elsewhere).
  static func scriptCommand(
    _ command: String, _ arguments: ParsedArguments, paths: Set<String>, alsoExcluding: Set<String> = []
  ) -> [String] {
    [executablePath(), command]
      + arguments.commandLine(excluding: executionOnly.union(alsoExcluding), paths: paths, transform: FileSystem.absolutePath)
  }

  /// This executable's absolute path (`/proc/self/exe`), for scripts that run it again.
  static func executablePath() -> String {
    FileSystem.canonicalPath("/proc/self/exe") ?? FileSystem.absolutePath(CommandLine.arguments.first ?? "smelt")
  }

  /// Writes the Slurm script for `job` and tells how to submit it and what the alternatives are, on stderr:
  /// stdout stays the command's result, JSON under `--json` / `--json-file`.
  func writeScript(
    job: String, command: [String], finalizeCommand: [String], part: ResourcePlan, finalize: ResourcePlan,
    logDirectory: String, notes: [String], context: CommandContext
  ) throws {
    guard let script else { return }
    let cluster = try ClusterScript(
      job: job, command: command, finalizeCommand: finalizeCommand, partCount: script.partCount, part: part,
      finalize: finalize, logDirectory: FileSystem.absolutePath(logDirectory), notes: notes)
    try FileSystem.writeFileAtomically(Array(cluster.sbatch.utf8), to: script.path)
    context.stderr.line("wrote \(script.path): \(script.partCount) parts of \(part.summary) (--cpus-per-task=\(part.cpus) --mem=\(part.slurmMemory)), then a finalize job")
    context.stderr.line("submit: bash \(script.path) [--partition=... --time=...]")
    context.stderr.line("without Slurm: \(cluster.xargs)")
  }
}
