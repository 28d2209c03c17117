import SystemIO
import TensorCore
import TestSupport

@testable import GGML

/// The committed output of ggml's own C code (scripts/make-golden-ggml; see Golden/README.md).
enum GGMLGolden {
  static let directory = TestPaths.repositoryRoot + "/Tests/GGMLTests/Golden"
  static let rowLength = 512
  static let rowCount = 64
  /// Rows 0..<edgeRowCount are edge cases, the rest Gaussian weights.
  static let edgeRowCount = 24

  static func bytes(_ name: String) throws -> [UInt8] { try FileSystem.readFile(directory + "/" + name) }

  static func floats(_ name: String) throws -> [Float] {
    let raw = try bytes(name)
    return raw.withUnsafeBytes { buffer in
      (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }
  }

  static let input: [Float] = try! floats("input.f32")
  static let importance: [Float] = try! floats("imatrix.f32")

  /// `type -> SHA-256 of to_float(<TYPE>.bin)`.
  static let dequantDigests: [String: String] = {
    let text = String(decoding: try! bytes("dequant.sha256"), as: UTF8.self)
    var digests: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      let parts = line.split(separator: " ")
      digests[String(parts[0])] = String(parts[1])
    }
    return digests
  }()

  /// The file stem ggml's harness uses for `type` (`Q4_K`, `IQ4_NL`, `BF16`).
  static func stem(_ type: GGMLType) -> String { type.name.uppercased() }

  /// Where two block streams first differ, as "row r, block b (byte o): expected .. got ..", or nil.
  static func firstDifference(_ actual: [UInt8], _ expected: [UInt8], type: GGMLType, rowLength: Int = rowLength) -> String? {
    guard actual.count == expected.count else { return "size \(actual.count), expected \(expected.count)" }
    guard let index = actual.indices.first(where: { actual[$0] != expected[$0] }) else { return nil }
    let rowBytes = type.rowByteCount(elementCount: rowLength)!
    let row = index / rowBytes
    let block = (index % rowBytes) / type.blockByteCount
    let start = row * rowBytes + block * type.blockByteCount
    let end = start + type.blockByteCount
    let differing = zip(actual[start..<end], expected[start..<end]).filter { $0 != $1 }.count
    return "row \(row), block \(block), byte \(index - start): \(differing) bytes differ; expected "
      + hex(expected[start..<end]) + " got " + hex(actual[start..<end])
  }

  static func hex(_ bytes: ArraySlice<UInt8>) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
  }
}

extension GGMLKernels {
  /// Quantizes `values` into a fresh array (test convenience).
  func quantized(_ values: [Float], rowLength: Int, importance: [Float]? = nil, _ implementation: Implementation) throws -> [UInt8] {
    let byteCount = values.count / rowLength * type.rowByteCount(elementCount: rowLength)!
    var output = [UInt8](repeating: 0xEE, count: byteCount)
    try values.withUnsafeBufferPointer { rows in
      try output.withUnsafeMutableBytes { out in
        if let importance {
          try importance.withUnsafeBufferPointer {
            try quantize(rows, rowLength: rowLength, importance: $0, into: out, implementation: implementation)
          }
        } else {
          try quantize(rows, rowLength: rowLength, into: out, implementation: implementation)
        }
      }
    }
    return output
  }

  /// Dequantizes whole rows into a fresh array (test convenience).
  func dequantized(_ blocks: [UInt8], rowLength: Int, _ implementation: Implementation) throws -> [Float] {
    let rowCount = blocks.count / type.rowByteCount(elementCount: rowLength)!
    var output = [Float](repeating: .nan, count: rowCount * rowLength)
    try blocks.withUnsafeBytes { raw in
      try output.withUnsafeMutableBufferPointer { try dequantize(raw, rowLength: rowLength, into: $0, implementation: implementation) }
    }
    return output
  }
}
