import Synchronization

/// A one-line progress bar on stderr for long commands:
///
/// `convert [#########-----------] 42% 1.2 GB/3.4 GB 850 MB/s ETA 0:03`
///
/// Redrawn in place with `\r` at most 10 times a second, and only when enabled (by convention: stderr is a
/// terminal and `--quiet` was not given; `CommandContext.progress` decides). Disabled reporters print
/// nothing at all, not even a summary, so piped and logged output stays clean. Thread-safe: worker threads
/// may call `advance(by:)` concurrently. Rendering is the pure `render(…)` so tests can pin it.
public final class ProgressReporter: Sendable {
  /// What `total` counts.
  public enum Unit: Sendable, Equatable {
    /// Shown as `1.2 GB/3.4 GB 850 MB/s`.
    case bytes
    /// Shown as `42/100 12.5/s`.
    case items
  }

  private struct State {
    var completed = 0
    var lastDraw: ContinuousClock.Instant?
    var isFinished = false
  }

  /// The work to do, in `unit`s.
  public let total: Int
  public let unit: Unit
  public let label: String
  /// Whether anything is drawn.
  public let isEnabled: Bool
  private let output: TextOutput
  private let width: Int
  private let start: ContinuousClock.Instant
  private let state = Mutex(State())

  /// Minimum time between redraws.
  public static let redrawInterval = Duration.milliseconds(100)

  /// A reporter for `total` units of work.
  /// - Parameters:
  ///   - enabled: draw at all (pass `stderr.isTerminal && !quiet`, or use `CommandContext.progress`).
  ///   - output: where to draw; stderr by default.
  ///   - width: the line width; `nil` uses `$COLUMNS` or 80.
  public init(
    total: Int, unit: Unit, label: String, enabled: Bool, output: TextOutput = .standardError, width: Int? = nil
  ) {
    self.total = max(total, 0)
    self.unit = unit
    self.label = label
    self.isEnabled = enabled
    self.output = output
    self.width = width ?? Terminal.columns
    self.start = ContinuousClock.now
  }

  /// Units done so far.
  public var completed: Int { state.withLock { $0.completed } }

  /// Records `count` more units done and redraws if the last draw is over 0.1 s old.
  public func advance(by count: Int) {
    let now = isEnabled ? ContinuousClock.now : start
    let text = state.withLock { (state: inout State) -> String? in
      let (sum, overflow) = state.completed.addingReportingOverflow(count)
      state.completed = overflow ? Int.max : max(sum, 0)
      guard isEnabled, !state.isFinished else { return nil }
      if let last = state.lastDraw, now - last < Self.redrawInterval { return nil }
      state.lastDraw = now
      return drawnLine(completed: state.completed, at: now)
    }
    if let text { output.write(text) }
  }

  /// Draws the final state and ends the line. Idempotent; later `advance` calls draw nothing.
  public func finish() {
    let now = ContinuousClock.now
    let text = state.withLock { (state: inout State) -> String? in
      guard isEnabled, !state.isFinished else { return nil }
      state.isFinished = true
      return drawnLine(completed: state.completed, at: now) + "\n"
    }
    if let text { output.write(text) }
  }

  private func drawnLine(completed: Int, at now: ContinuousClock.Instant) -> String {
    let elapsed = now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    let text = Self.render(
      label: label, completed: completed, total: total, unit: unit, elapsedSeconds: seconds, width: width)
    return "\r" + text + "\u{1B}[K"
  }

  /// The progress line for a state, fitting in `width - 1` columns when possible (so the cursor never
  /// wraps). The bar is 10 to 30 cells wide and is dropped when even 10 cells do not fit.
  /// - Parameters:
  ///   - elapsedSeconds: time since the start; rate and ETA are unknown (`--`) until it is positive and
  ///     some work is done.
  public static func render(
    label: String, completed: Int, total: Int, unit: Unit, elapsedSeconds: Double, width: Int
  ) -> String {
    let completed = max(0, min(completed, max(total, 0)))
    let fraction = total > 0 ? Double(completed) / Double(total) : 1
    let percent = Int((fraction * 100).rounded(.down))

    let counts: String
    let rateText: String
    let rate = elapsedSeconds > 0 && completed > 0 ? Double(completed) / elapsedSeconds : nil
    switch unit {
    case .bytes:
      counts = "\(DisplayFormat.bytes(completed))/\(DisplayFormat.bytes(total))"
      rateText = rate.map { "\(DisplayFormat.bytes(Int(min($0, 9e18))))/s" } ?? "-- B/s"
    case .items:
      counts = "\(completed)/\(total)"
      rateText = rate.map { "\(DisplayFormat.decimal($0))/s" } ?? "--/s"
    }
    let eta = rate.map { DisplayFormat.duration(seconds: Double(total - completed) / $0) } ?? "--:--"
    let tail = "\(percent)% \(counts) \(rateText) ETA \(eta)"

    // label + " [" + bar + "] " + tail must fit in width - 1.
    let room = width - 1 - label.count - 4 - tail.count
    guard room >= 10 else { return "\(label) \(tail)" }
    let barWidth = min(room, 30)
    let filled = Int((fraction * Double(barWidth)).rounded(.down))
    let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled)
    return "\(label) [\(bar)] \(tail)"
  }
}
