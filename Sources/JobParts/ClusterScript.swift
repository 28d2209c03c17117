/// A split job as a ready-to-submit scheduler script (`--emit-sbatch FILE`).
///
/// The script is plain bash that calls `sbatch` twice: an array job of `partCount` tasks, each running the
/// job's command with `--part slurm --resume`, and a finalize job that Slurm starts only once every task has
/// succeeded (`--dependency=afterok`). Tasks are `--requeue` safe: a preempted, failed or requeued task
/// reruns the same command, which resumes its part and rewrites nothing it had finished (a part's outputs
/// are a pure function of the job), so requeues change no byte of the result.
public struct ClusterScript: Sendable {
  /// `convert`, `shard` or `validate` (the Slurm job names are `smelt-<job>` and `smelt-<job>-finalize`).
  public var job: String
  /// The command a single run would be, absolute paths (`[smelt, convert, /in, /out, --to, bf16]`); the
  /// first element is the executable.
  public var command: [String]
  /// The finalize command (`[smelt, convert, --finalize, /out]`).
  public var finalizeCommand: [String]
  public var partCount: Int
  /// One part's needs, and the finalize job's.
  public var part: ResourcePlan
  public var finalize: ResourcePlan
  /// Where Slurm writes the tasks' logs.
  public var logDirectory: String
  /// What the plan is based on, one line each (printed as comments).
  public var notes: [String]

  /// - Throws: `PartsError.unschedulable` for a log directory `#SBATCH --output` cannot name (blanks).
  public init(
    job: String, command: [String], finalizeCommand: [String], partCount: Int, part: ResourcePlan, finalize: ResourcePlan,
    logDirectory: String, notes: [String] = []
  ) throws(PartsError) {
    guard !logDirectory.contains(where: \.isWhitespace) else {
      throw .unschedulable(reason: "the log directory '\(logDirectory)' has blanks, which #SBATCH --output cannot take; choose a directory without")
    }
    self.job = job
    self.command = command
    self.finalizeCommand = finalizeCommand
    self.partCount = partCount
    self.part = part
    self.finalize = finalize
    self.logDirectory = logDirectory
    self.notes = notes
  }

  /// The executable named in the script (overridable with `SMELT=...` at submit time, which `sbatch`
  /// exports to the tasks).
  var executable: String { command.first ?? "smelt" }

  /// The command each array task runs.
  public var partCommand: [String] { Array(command.dropFirst()) + ["--part", "slurm", "--resume"] }

  /// The bash script.
  public var sbatch: String {
    let name = "smelt-\(job)"
    let run = { (arguments: [String]) in "exec \"${SMELT:-\(ShellQuoting.doubleQuotedBody(executable))}\" " + arguments.map(ShellQuoting.quote).joined(separator: " ") }
    var lines: [String] = [
      "#!/usr/bin/env bash",
      "# A Slurm job for: \(ShellQuoting.comment(command.map(ShellQuoting.quote).joined(separator: " ")))",
      "# written by smelt --emit-sbatch. Submit with:",
      "#",
      "#   bash \(ShellQuoting.comment("THIS_FILE")) [SBATCH OPTIONS...]     e.g. --partition=cpu --account=NAME --time=2:00:00",
      "#",
      "# It submits \(partCount) array tasks (one part each) and a finalize job that starts when all of them have",
      "# succeeded (--dependency=afterok). Tasks may be requeued or rerun at any time (--requeue): a part resumes",
      "# and rewrites nothing it finished, so the result is byte-identical to one run of the command above.",
      "# A task that failed or was cancelled breaks the finalize job's afterok for good (Slurm does not re-arm it):",
      "# fix the cause, 'scontrol requeue JOBID_TASK', 'scancel' the finalize job and, once the task has finished,",
      "# run the finalize command below (or sbatch it with --dependency=afterok:JOBID_TASK). Parts that finished stay.",
      "# Per part: \(part.summary) (Smelt's plan) -> --cpus-per-task=\(part.cpus) --mem=\(part.slurmMemory).",
      "# Finalize: \(finalize.summary) -> --cpus-per-task=\(finalize.cpus) --mem=\(finalize.slurmMemory).",
    ]
    lines += notes.map { "# \(ShellQuoting.comment($0))" }
    lines += [
      "# SMELT=/path/to/smelt overrides the executable; it must be reachable from the compute nodes.",
      "set -euo pipefail",
      "mkdir -p \(ShellQuoting.quote(logDirectory))",
      "parts=$(sbatch --parsable \"$@\" <<'SMELT_PARTS'",
      "#!/bin/bash",
      "#SBATCH --job-name=\(name)",
      "#SBATCH --array=1-\(partCount)",
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks=1",
      "#SBATCH --cpus-per-task=\(part.cpus)",
      "#SBATCH --mem=\(part.slurmMemory)",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=\(ShellQuoting.sbatchPath(logDirectory))/%x-%A_%a.log",
      run(partCommand),
      "SMELT_PARTS",
      ")",
      "parts=${parts%%;*}",
      "finalize=$(sbatch --parsable \"$@\" --dependency=afterok:\"$parts\" <<'SMELT_FINALIZE'",
      "#!/bin/bash",
      "#SBATCH --job-name=\(name)-finalize",
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks=1",
      "#SBATCH --cpus-per-task=\(finalize.cpus)",
      "#SBATCH --mem=\(finalize.slurmMemory)",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=\(ShellQuoting.sbatchPath(logDirectory))/%x-%j.log",
      run(Array(finalizeCommand.dropFirst())),
      "SMELT_FINALIZE",
      ")",
      "finalize=${finalize%%;*}",
      "echo \"submitted \(name): parts $parts (array 1-\(partCount)), finalize $finalize (after all parts succeed); logs in \(ShellQuoting.doubleQuotedBody(logDirectory))\"",
    ]
    return lines.joined(separator: "\n") + "\n"
  }

  /// The same job for GNU `xargs` on one or more machines sharing the output directory.
  public var xargs: String {
    let arguments = (command + ["--part", "{}/\(partCount)"]).map(ShellQuoting.quote).joined(separator: " ")
    return "seq 1 \(partCount) | xargs -P \(partCount) -I{} \(arguments) && \(finalizeCommand.map(ShellQuoting.quote).joined(separator: " "))"
  }
}

/// Quoting for the POSIX shell.
enum ShellQuoting {
  /// `word` as one shell word: bare when it only has safe characters, else single-quoted.
  static func quote(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) { return word }
    return "'" + word.replacing("'", with: "'\\''") + "'"
  }

  /// `text` escaped for the inside of a double-quoted string.
  static func doubleQuotedBody(_ text: String) -> String {
    var out = ""
    for c in text {
      if "\"\\$`".contains(c) { out.append("\\") }
      out.append(c)
    }
    return out
  }

  /// `text` with line breaks removed (inside a comment line).
  static func comment(_ text: String) -> String {
    String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
  }

  /// A path for an `#SBATCH` line, where no shell runs: Slurm expands `%` patterns (so `%` is doubled) and
  /// ends the value at the first blank (`ClusterScript.init` refuses such paths).
  static func sbatchPath(_ path: String) -> String { path.replacing("%", with: "%%") }
}
