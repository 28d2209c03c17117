#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
import SystemIO
import Testing

@testable import CommandLineSupport

@Suite("Interrupts") struct InterruptTests {
  @Test("SIGTERM runs the cleanups and exits 130 with Interrupted.")
  func sigterm() async {
    let path = "/tmp/smelt-interrupt-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(path, O_CREAT | O_WRONLY, 0o600)
    #expect(fd >= 0)
    close(fd)
    await #expect(processExitsWith: .exitCode(130), observing: [\.standardErrorContent]) { [path = path as String] in
      InterruptHandler.install()
      InterruptHandler.removeOnInterrupt(path: path)
      usleep(200_000)  // Dispatch registers the signal source asynchronously.
      kill(getpid(), SIGTERM)
      sleep(10)
    }.map { result in
      #expect(String(decoding: result.standardErrorContent, as: UTF8.self).hasSuffix("Interrupted.\n"))
    }
    #expect(access(path, F_OK) != 0, "the interrupt cleanup should have removed \(path)")
    unlink(path)
  }

  // Issue 15 item 13: SIGHUP (an ssh disconnect), SIGUSR1 and SIGPIPE killed the process with its temporary
  // files still on disk. SIGPIPE is tested on the real binary (HostileRoundTwoTests.signalsDuringConversion):
  // in the test library's child process it was seen to end up ignored again at an unpredictable moment.
  @Test("SIGHUP, SIGUSR1 and the other terminating signals clean up like SIGINT", arguments: [
    SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU,
  ])
  func otherSignals(_ signalNumber: Int32) async {
    let path = "/tmp/smelt-interrupt-test-\(getpid())-\(signalNumber)-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(path, O_CREAT | O_WRONLY, 0o600)
    #expect(fd >= 0)
    close(fd)
    await #expect(processExitsWith: .exitCode(130), observing: [\.standardErrorContent]) {
      [path = path as String, signalNumber = signalNumber as Int32] in
      InterruptHandler.install()
      InterruptHandler.removeOnInterrupt(path: path)
      kill(getpid(), signalNumber)
      sleep(10)
    }.map { result in
      #expect(String(decoding: result.standardErrorContent, as: UTF8.self).hasSuffix("Interrupted.\n"))
    }
    #expect(access(path, F_OK) != 0, "the cleanup should have removed \(path) on signal \(signalNumber)")
    unlink(path)
  }
}
