import Foundation
import TensorCore

@testable import Quantization

/// A tiny safetensors reader for the committed golden fixtures under `Golden/int4` (test-only; the real
/// reader lives in the SafeTensors module).
struct Int4GoldenFile {
  struct Entry {
    var dtype: DType
    var shape: [Int]
    var bytes: [UInt8]
  }

  let name: String
  let entries: [String: Entry]

  init(_ name: String) throws {
    guard
      let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Golden/int4")
    else { throw GoldenError.missing(name) }
    let data = try Data(contentsOf: url)
    let bytes = [UInt8](data)
    var headerLength = 0
    for k in 0..<8 { headerLength |= Int(bytes[k]) << (8 * k) }
    let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<8 + headerLength])) as? [String: Any] ?? [:]
    var entries: [String: Entry] = [:]
    for (key, value) in header where key != "__metadata__" {
      guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
        let dtype = DType(rawValue: dtypeName), let shape = info["shape"] as? [Int],
        let offsets = info["data_offsets"] as? [Int]
      else { throw GoldenError.malformed(name, key) }
      let start = 8 + headerLength + offsets[0]
      let end = 8 + headerLength + offsets[1]
      entries[key] = Entry(dtype: dtype, shape: shape, bytes: Array(bytes[start..<end]))
    }
    self.name = name
    self.entries = entries
  }

  func entry(_ key: String) throws -> Entry {
    guard let e = entries[key] else { throw GoldenError.malformed(name, key) }
    return e
  }

  /// A float tensor (F32/BF16/F16) decoded to F32.
  func floats(_ key: String) throws -> [Float] {
    let e = try entry(key)
    return GroupQuantRounding.decode(e.bytes, as: e.dtype)
  }

  /// The `input` tensor as a weight matrix handed to `body`.
  func withInput<R>(_ body: (WeightMatrix) throws -> R) throws -> R {
    let e = try entry("input")
    let values = try floats("input")
    return try values.withUnsafeBufferPointer { buffer in
      try body(WeightMatrix(values: buffer, rowCount: e.shape[0], columnCount: e.shape[1], dtype: e.dtype))
    }
  }

  /// Compares Smelt's tensor with the golden one of the same name; returns a failure description or nil.
  func mismatch(_ tensor: PackedTensor, goldenName: String? = nil) -> String? {
    let key = goldenName ?? tensor.nameSuffix
    guard let golden = entries[key] else { return "\(name): golden has no \(key)" }
    if golden.dtype != tensor.dtype { return "\(name).\(key): dtype \(tensor.dtype) vs golden \(golden.dtype)" }
    if golden.shape != tensor.shape { return "\(name).\(key): shape \(tensor.shape) vs golden \(golden.shape)" }
    if golden.bytes != tensor.bytes {
      let differing = zip(golden.bytes, tensor.bytes).enumerated().filter { $0.element.0 != $0.element.1 }
      let first = differing.first.map { "byte \($0.offset): smelt \($0.element.1) golden \($0.element.0)" } ?? "length"
      return "\(name).\(key): \(differing.count) bytes differ, first \(first)"
    }
    return nil
  }

  /// Compares a dequantized matrix with the golden `dequant` tensor, bit for bit.
  func dequantMismatch(_ matrix: DequantizedMatrix) throws -> String? {
    let golden = try entry("dequant")
    if golden.dtype != matrix.dtype { return "\(name).dequant: dtype \(matrix.dtype) vs golden \(golden.dtype)" }
    let expected = try floats("dequant")
    let differing = zip(expected, matrix.values).enumerated().filter {
      $0.element.0.bitPattern != $0.element.1.bitPattern
    }
    guard let first = differing.first else { return nil }
    return "\(name).dequant: \(differing.count) values differ, first at \(first.offset): "
      + "smelt \(first.element.1) golden \(first.element.0)"
  }

  enum GoldenError: Error {
    case missing(String)
    case malformed(String, String)
  }
}
