#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
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
}
