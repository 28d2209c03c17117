#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
import Testing

@testable import JSON

/// Nesting depth costs the parser heap, not call stack (issue 15: `ulimit -s 64` crashed the recursive
/// parser). The deepest documents the limit allows are parsed on a thread whose whole stack is 64 KiB.
@Suite("JSON parser stack use")
struct JSONStackDepthTests {
  /// Runs `body` on a new thread with a `stackBytes` stack and waits for it.
  static func onSmallStack(_ stackBytes: Int, _ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
      let body: @Sendable () -> Void
      init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    #expect(pthread_attr_setstacksize(&attributes, stackBytes) == 0)
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let created = pthread_create(&thread, &attributes, { raw in
      let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
      box.body()
      return nil
    }, context)
    #expect(created == 0)
    pthread_join(thread, nil)
  }

  @Test("the deepest allowed arrays and objects parse (and are freed) on a 64 KiB thread stack")
  func deepDocumentsOnSmallStack() {
    Self.onSmallStack(64 * 1024) {
      let depth = JSONParser.defaultMaxDepth
      let arrays = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
      let objects = String(repeating: "{\"k\":", count: depth) + "1" + String(repeating: "}", count: depth)
      for text in [arrays, objects] {
        var value = try? JSONParser.parse(text)
        var levels = 0
        while let inner = value?[0] ?? value?["k"] {
          levels += 1
          value = inner
        }
        precondition(levels == depth && value == 1, "wrong tree for \(text.prefix(8))")
      }
      // Far beyond the limit: a clean error, no stack growth.
      let hostile = String(repeating: "[{\"a\":", count: 50_000)
      precondition((try? JSONParser.parse(hostile)) == nil)
    }
  }
}
