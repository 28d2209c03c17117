import Testing

@testable import CommandLineSupport

@Suite("Progress reporter") struct ProgressTests {
  @Test("renders bytes with bar, percent, rate and ETA at a fixed width and time")
  func rendersBytes() {
    let line = ProgressReporter.render(
      label: "convert", completed: 1_428_000_000, total: 3_400_000_000, unit: .bytes, elapsedSeconds: 1.68,
      width: 80)
    #expect(line == "convert [############------------------] 42% 1.4 GB/3.4 GB 850 MB/s ETA 0:03")
    #expect(line.count <= 79)
  }

  @Test("renders items, unknown rate and a finished bar")
  func rendersItems() {
    #expect(
      ProgressReporter.render(label: "shard", completed: 0, total: 4, unit: .items, elapsedSeconds: 0, width: 70)
        == "shard [------------------------------] 0% 0/4 --/s ETA --:--")
    #expect(
      ProgressReporter.render(label: "shard", completed: 9, total: 4, unit: .items, elapsedSeconds: 2, width: 70)
        == "shard [##############################] 100% 4/4 2.0/s ETA 0:00")
  }

  @Test("drops the bar when the line is too narrow")
  func narrow() {
    #expect(
      ProgressReporter.render(label: "x", completed: 1, total: 2, unit: .items, elapsedSeconds: 1, width: 30)
        == "x 50% 1/2 1.0/s ETA 0:01")
  }

  @Test("a disabled reporter writes nothing but still counts")
  func disabled() {
    let output = TextOutput.capture(asTerminal: true)
    let progress = ProgressReporter(total: 10, unit: .items, label: "x", enabled: false, output: output)
    progress.advance(by: 3)
    progress.finish()
    #expect(progress.completed == 3)
    #expect(output.text.isEmpty)
  }

  @Test("an enabled reporter redraws in place and ends the line once")
  func enabled() {
    let output = TextOutput.capture(asTerminal: true)
    let progress = ProgressReporter(total: 10, unit: .items, label: "x", enabled: true, output: output, width: 200)
    progress.advance(by: 5)
    progress.advance(by: 5)  // within 0.1 s of the first draw: not drawn
    progress.finish()
    progress.finish()
    let draws = output.text.split(separator: "\r", omittingEmptySubsequences: true)
    #expect(draws.count == 2)
    #expect(draws[0].hasPrefix("x [###############---------------] 50% 5/10"))
    #expect(draws[1].hasPrefix("x [##############################] 100% 10/10"))
    #expect(output.text.hasSuffix("\u{1B}[K\n"))
  }

  @Test("counts correctly when advanced from many threads")
  func concurrent() async {
    let progress = ProgressReporter(total: 8000, unit: .bytes, label: "x", enabled: false)
    await withTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask { for _ in 0..<1000 { progress.advance(by: 1) } }
      }
    }
    #expect(progress.completed == 8000)
  }

  @Test("context enables progress only on a terminal and when not quiet")
  func contextPolicy() {
    let tty = TextOutput.capture(asTerminal: true)
    let pipe = TextOutput.capture(asTerminal: false)
    #expect(CommandContext(stdout: pipe, stderr: tty).progress(total: 1, unit: .items, label: "").isEnabled)
    #expect(!CommandContext(stdout: pipe, stderr: pipe).progress(total: 1, unit: .items, label: "").isEnabled)
    #expect(
      !CommandContext(stdout: pipe, stderr: tty, isQuiet: true).progress(total: 1, unit: .items, label: "").isEnabled)
  }
}
