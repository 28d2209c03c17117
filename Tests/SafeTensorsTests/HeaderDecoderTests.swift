import Foundation
import Testing

@testable import SafeTensors

/// The fast header decoder is an optimization only: on every input it either gives exactly the strict
/// parser's header or steps aside, so the strict path keeps defining every error.
@Suite("fast header decoder")
struct HeaderDecoderTests {
  /// The result of parsing `file` with or without the fast decoder.
  static func parse(_ file: [UInt8], fastPath: Bool) -> Result<SafeTensorsHeader, SafeTensorsError> {
    file.withUnsafeBytes { bytes in
      Result { () throws(SafeTensorsError) -> SafeTensorsHeader in
        try SafeTensorsHeader.parse(prefix: bytes, fileByteCount: bytes.count, fastPath: fastPath)
      }
    }
  }

  /// Headers the decoder handles itself: the writer's compact form, whitespace everywhere, fields in any
  /// order, metadata anywhere or null, offsets out of header order, non-ASCII names, an empty header.
  static let handled: [[UInt8]] = [
    HeaderParsingTests.validFile,
    makeFile(
      " \n{ \"b\" : { \"shape\" : [ 4 ] , \"data_offsets\" : [ 16 , 24 ] , \"dtype\" : \"BF16\" } ,\t\"__metadata__\" : null ,"
        + " \"wé\" : {\"data_offsets\":[0,16],\"dtype\":\"F32\",\"shape\":[2,2]} } \r\n", data: Array(0..<24)),
    makeFile(#"{"s":{"dtype":"F8_E4M3","shape":[],"data_offsets":[0,1]},"z":{"dtype":"F32","shape":[0,7],"data_offsets":[1,1]}}"#, data: [9]),
    makeFile("{}"),
  ]

  @Test("headers it handles decode to exactly the strict parser's result", arguments: 0..<handled.count)
  func agreesOnValidHeaders(_ index: Int) throws {
    let file = Self.handled[index]
    let header = try Self.parse(file, fastPath: false).get()
    let json = file.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[8..<header.dataStart]) }
    #expect(HeaderDecoder.decode(json) != nil, "the fast path should handle this header")
    #expect(try Self.parse(file, fastPath: true).get() == header)
  }

  @Test("thousands of byte mutations: the fast path gives the strict path's header or its error")
  func mutationsAgree() {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    func next() -> UInt64 {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return state
    }
    let interesting: [UInt8] = [0, 0x09, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x31, 0x39, 0x3A, 0x45, 0x5B, 0x5C, 0x5D, 0x65, 0x7B, 0x7D, 0x80, 0xC3, 0xFF]
    var fastAccepted = 0
    for round in 0..<6000 {
      var file = Self.handled[round % Self.handled.count]
      for _ in 0..<(1 + Int(next() % 3)) {
        let position = 8 + Int(next() % UInt64(max(1, file.count - 8)))
        guard position < file.count else { continue }
        file[position] = next() % 2 == 0 ? interesting[Int(next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: next())
      }
      let strict = Self.parse(file, fastPath: false)
      let fast = Self.parse(file, fastPath: true)
      switch (strict, fast) {
      case (.success(let a), .success(let b)):
        #expect(a == b)
        fastAccepted += 1
      case (.failure(let a), .failure(let b)): #expect(a == b)
      default: Issue.record("paths disagree on mutation \(round): strict \(strict), fast \(fast)")
      }
    }
    #expect(fastAccepted > 0)
  }

  @Test("the decoder handles no file of the malformed corpus")
  func stepsAsideOnTheCorpus() throws {
    for testCase in MalformedCorpusTests.cases where testCase.rule != "ok" {
      guard let data = FileManager.default.contents(atPath: MalformedCorpusTests.directory + "/" + testCase.file) else {
        Issue.record("cannot read \(testCase.file)")
        continue
      }
      let file = Array(data)
      guard file.count >= 8 else { continue }
      let n = file.withUnsafeBytes { Int(truncatingIfNeeded: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
      guard n >= 0, n <= file.count - 8 else { continue }
      let json = file.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[8..<(8 + n)]) }
      let decoded = HeaderDecoder.decode(json)
      // A structurally fine header may still break rules 7-11 (offsets, sizes), which both paths share.
      if decoded != nil {
        #expect(["invalidOffset", "validationOverflow", "misalignedSlice", "tensorInvalidInfo", "metadataIncompleteBuffer"].contains(testCase.rule), "\(testCase.file)")
      }
      let strict = Self.parse(file, fastPath: false)
      let fast = Self.parse(file, fastPath: true)
      if case .failure(let a) = strict, case .failure(let b) = fast { #expect(a == b, "\(testCase.file)") } else {
        Issue.record("\(testCase.file) accepted")
      }
    }
  }

}
