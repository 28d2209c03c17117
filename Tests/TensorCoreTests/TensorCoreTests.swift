import Testing
@testable import TensorCore

@Suite("SHA-256") struct SHA256Tests {
  @Test("matches the NIST example vectors", arguments: [
    ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
  ])
  func nistVectors(input: String, expected: String) {
    #expect(SHA256.hex(of: Array(input.utf8)) == expected)
  }

  @Test("hashes a million 'a's (the long NIST vector)")
  func millionA() {
    #expect(SHA256.hex(of: [UInt8](repeating: 0x61, count: 1_000_000))
      == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  @Test("gives the same digest however the input is split")
  func streamingSplits() {
    let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let whole = SHA256.hex(of: data)
    for split in [1, 63, 64, 65, 127, 500, 999] {
      var hasher = SHA256()
      hasher.update(Array(data[..<split]))
      hasher.update(Array(data[split...]))
      #expect(SHA256.hexString(hasher.finalize()) == whole, "split at \(split)")
    }
  }
}

@Suite("Checked byte counts") struct ByteCountTests {
  @Test("computes sizes including sub-byte dtypes")
  func sizes() {
    #expect(ByteCount.of(.float32, shape: [2, 3]) == 24)
    #expect(ByteCount.of(.float4E2M1, shape: [4]) == 2)
    #expect(ByteCount.of(.float6E2M3, shape: [4]) == 3)
    #expect(ByteCount.of(.float32, shape: []) == 4)
    #expect(ByteCount.of(.bfloat16, shape: [0, 7]) == 0)
  }

  @Test("rejects overflow, negative dims and fractional bytes")
  func rejects() {
    #expect(ByteCount.of(.float32, shape: [Int.max, 2]) == nil)
    #expect(ByteCount.of(.float64, shape: [1 << 61]) == nil)
    #expect(ByteCount.of(.float4E2M1, shape: [3]) == nil)
    #expect(ByteCount.elementCount([-1]) == nil)
  }

  @Test("orders dtypes as the reference crate does")
  func crateOrder() {
    #expect(DType.allCases.first == .bool)
    #expect(DType.allCases.last == .uint64)
    #expect(DType.float8E4M3FN.crateOrder < DType.bfloat16.crateOrder)
    #expect(DType.allCases.count == 22)
  }
}

@Suite("Prefetch") struct PrefetchTests {
  struct Failure: Error, Equatable { let index: Int }

  @Test("a prefetch returns what its work computed, in the order they were started, and rethrows its error")
  func returnsTheValueOrTheError() throws {
    let loads = (0..<16).map { i in Prefetch { () throws -> [Int] in
      if i == 11 { throw Failure(index: i) }
      return Array(repeating: i, count: 1000 + i)
    } }
    for (i, load) in loads.enumerated() {
      if i == 11 {
        #expect(throws: Failure(index: 11)) { try load.value() }
      } else {
        #expect(try load.value() == Array(repeating: i, count: 1000 + i))
      }
    }
  }
}
