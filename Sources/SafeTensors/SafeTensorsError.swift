import JSON
import SystemIO
import TensorCore

/// Why a safetensors header, layout or file was rejected.
///
/// The first eleven groups of cases follow the reference crate's checks in the order it runs them
/// (`formats/safetensors.md` maps each to its test); the rest are Smelt's stricter checks and the
/// planner's, reader's and writer's errors. Offsets named `fileOffset` count from the start of the file;
/// "byte N of the data section" counts from the end of the header (`dataStart`).
public enum SafeTensorsError: Error, Sendable, Equatable, CustomStringConvertible {
  // Rule 1
  /// The file is shorter than the 8-byte header length field.
  case headerTooSmall(fileByteCount: Int)
  // Rule 3
  /// The header length exceeds 100,000,000 bytes; `looksLike` names the file kind when the first bytes
  /// reveal one (these almost always mean "not a safetensors file at all").
  case headerTooLarge(headerByteCount: UInt64, looksLike: ForeignFileKind?)
  // Rule 4
  /// The header (8 + N bytes) runs past the end of the file.
  case invalidHeaderLength(headerByteCount: UInt64, fileByteCount: Int)
  // Rule 5
  /// The header is not valid UTF-8.
  case invalidUTF8(fileOffset: Int)
  // Rule 6: JSON syntax and types.
  /// The header is not valid JSON (offsets in the `JSONError` count from the start of the header JSON,
  /// which is file offset 8).
  case invalidJSON(JSONError)
  /// The header JSON is not an object.
  case headerNotObject(found: String)
  /// The same tensor name appears twice (stricter than the crate, which keeps the last one).
  case duplicateTensor(name: String, fileOffset: Int?)
  /// `__metadata__` is not an object whose values are all strings (or null).
  case invalidMetadata(key: String?, found: String)
  /// A tensor entry is not an object, or its `dtype` is not a string.
  case invalidEntry(tensor: String, reason: String)
  /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
  case missingField(tensor: String, field: String)
  /// `dtype` is not one of the 22 dtype strings the crate knows (case-sensitive).
  case unknownDType(tensor: String, dtype: String)
  /// `shape` is not an array of non-negative integers (`8.0` and `1e3` are not integers).
  case invalidShape(tensor: String, reason: String)
  /// `data_offsets` is not an array of exactly two non-negative integers.
  case invalidDataOffsets(tensor: String, reason: String)
  // Rule 7
  /// Tensors sorted by `data_offsets` must tile the data section from byte 0 with no gap or overlap, and
  /// each must end at or after its start.
  case invalidOffset(
    tensor: String, begin: UInt64, end: UInt64, expectedBegin: UInt64, previousTensor: String?, dataStart: Int)
  // Rule 8
  /// The element count or bit count of the shape overflows 64 bits (or a dimension exceeds `Int.max`).
  case validationOverflow(tensor: String, dtype: DType, shape: [UInt64])
  // Rule 9
  /// A sub-byte dtype whose element count does not fill whole bytes.
  case misalignedSlice(tensor: String, dtype: DType, elementCount: UInt64)
  // Rule 10
  /// `data_offsets` span a different number of bytes than shape × dtype needs.
  case tensorInvalidInfo(tensor: String, dtype: DType, shape: [Int], expectedByteCount: Int, begin: UInt64, end: UInt64)
  // Rule 11
  /// The tensors do not cover the file exactly: trailing bytes (`dataEnd` < file end) or truncation.
  case metadataIncompleteBuffer(dataEndFileOffset: UInt64?, fileByteCount: Int)

  // Planner, reader and writer.
  /// A planned tensor is named `__metadata__`, which the format reserves.
  case reservedTensorName
  /// A planned shape has a negative dimension.
  case negativeDimension(tensor: String, shape: [Int])
  /// No tensor of that name in this file or layout.
  case tensorNotFound(name: String)
  /// Copying a tensor out as a Swift type whose size is not the dtype's element size.
  case elementSizeMismatch(tensor: String, dtype: DType, requestedByteWidth: Int)
  /// A write that does not fit inside its tensor.
  case writeOutOfBounds(tensor: String, offsetWithinTensor: Int, byteCount: Int, tensorByteCount: Int)
  /// A write that overlaps bytes already written to the tensor.
  case overlappingWrite(tensor: String, offsetWithinTensor: Int, byteCount: Int)
  /// `commit()` found a tensor that was not completely written.
  case incompleteTensor(tensor: String, writtenByteCount: Int, expectedByteCount: Int, incompleteTensorCount: Int)
  /// The writer was already committed or abandoned.
  case writerClosed
  /// A system call failed.
  case io(SystemError)

  /// A stable camel-case name of the rule that failed (`"invalidOffset"`), for tests, manifests and JSON
  /// output.
  public var rule: String {
    switch self {
    case .headerTooSmall: "headerTooSmall"
    case .headerTooLarge: "headerTooLarge"
    case .invalidHeaderLength: "invalidHeaderLength"
    case .invalidUTF8: "invalidUTF8"
    case .invalidJSON: "invalidJSON"
    case .headerNotObject: "headerNotObject"
    case .duplicateTensor: "duplicateTensor"
    case .invalidMetadata: "invalidMetadata"
    case .invalidEntry: "invalidEntry"
    case .missingField: "missingField"
    case .unknownDType: "unknownDType"
    case .invalidShape: "invalidShape"
    case .invalidDataOffsets: "invalidDataOffsets"
    case .invalidOffset: "invalidOffset"
    case .validationOverflow: "validationOverflow"
    case .misalignedSlice: "misalignedSlice"
    case .tensorInvalidInfo: "tensorInvalidInfo"
    case .metadataIncompleteBuffer: "metadataIncompleteBuffer"
    case .reservedTensorName: "reservedTensorName"
    case .negativeDimension: "negativeDimension"
    case .tensorNotFound: "tensorNotFound"
    case .elementSizeMismatch: "elementSizeMismatch"
    case .writeOutOfBounds: "writeOutOfBounds"
    case .overlappingWrite: "overlappingWrite"
    case .incompleteTensor: "incompleteTensor"
    case .writerClosed: "writerClosed"
    case .io: "io"
    }
  }

  public var description: String {
    switch self {
    case .headerTooSmall(let fileByteCount):
      return "file is \(fileByteCount) bytes, too small for the 8-byte header length of a safetensors file"
    case .headerTooLarge(let headerByteCount, let looksLike):
      let base =
        "header length \(headerByteCount) exceeds the \(SafeTensorsHeader.maximumHeaderByteCount)-byte limit"
      guard let looksLike else { return base + "; this is probably not a safetensors file" }
      return base + "; \(looksLike.advice)"
    case .invalidHeaderLength(let headerByteCount, let fileByteCount):
      return "header length \(headerByteCount) runs past the end of the \(fileByteCount)-byte file"
        + " (8 + \(headerByteCount) > \(fileByteCount)); the file is truncated or not a safetensors file"
    case .invalidUTF8(let fileOffset):
      return "invalid UTF-8 in header at file offset \(fileOffset)"
    case .invalidJSON(let error):
      return "invalid JSON in header: \(error.reason) at file offset \(error.byteOffset + 8)"
    case .headerNotObject(let found):
      return "header JSON must be an object of tensors, found \(found)"
    case .duplicateTensor(let name, let fileOffset):
      let location = fileOffset.map { " at file offset \($0)" } ?? ""
      return "duplicate tensor name '\(name)'\(location) (readers disagree on which entry wins)"
    case .invalidMetadata(let key, let found):
      if let key { return "__metadata__ value for '\(key)' must be a string, found \(found)" }
      return "__metadata__ must be an object of strings (or null), found \(found)"
    case .invalidEntry(let tensor, let reason):
      return "invalid entry for tensor '\(tensor)': \(reason)"
    case .missingField(let tensor, let field):
      return "tensor '\(tensor)' has no \(field) field"
    case .unknownDType(let tensor, let dtype):
      var text = "unknown dtype \"\(dtype)\" for tensor '\(tensor)'"
      if let match = DType.allCases.first(where: { $0.rawValue.lowercased() == dtype.lowercased() }) {
        text += " (dtype names are case-sensitive: did you mean \(match.rawValue)?)"
      } else {
        text += " (known: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
      }
      return text
    case .invalidShape(let tensor, let reason):
      return "invalid shape for tensor '\(tensor)': \(reason)"
    case .invalidDataOffsets(let tensor, let reason):
      return "invalid data_offsets for tensor '\(tensor)': \(reason)"
    case .invalidOffset(let tensor, let begin, let end, let expectedBegin, let previousTensor, let dataStart):
      let section = "(data section starts at file offset \(dataStart))"
      if begin == expectedBegin, end < begin {
        return "invalid offset for tensor '\(tensor)': ends at byte \(end) of the data section, before its start"
          + " at \(begin) \(section)"
      }
      guard let previousTensor else {
        return "invalid offset for tensor '\(tensor)': starts at byte \(begin) of the data section but the first"
          + " tensor must start at 0 \(section)"
      }
      let relation = begin > expectedBegin ? "leaving a gap of \(begin - expectedBegin) bytes" : "overlapping it"
      return "invalid offset for tensor '\(tensor)': starts at byte \(begin) of the data section but the previous"
        + " tensor '\(previousTensor)' ends at \(expectedBegin), \(relation) \(section)"
    case .validationOverflow(let tensor, let dtype, let shape):
      return "shape \(shape) of tensor '\(tensor)' (\(dtype)) is too large: its element or bit count overflows"
        + " 64-bit arithmetic"
    case .misalignedSlice(let tensor, let dtype, let elementCount):
      return "tensor '\(tensor)' has \(elementCount) \(dtype) elements of \(dtype.bitWidth) bits, which is not a"
        + " whole number of bytes"
    case .tensorInvalidInfo(let tensor, let dtype, let shape, let expectedByteCount, let begin, let end):
      let span = end >= begin ? "\(end - begin)" : "a negative number of"
      return "invalid shape, data type, or offset for tensor '\(tensor)': \(dtype) \(shape) needs"
        + " \(expectedByteCount) bytes but data_offsets [\(begin), \(end)] span \(span) bytes"
    case .metadataIncompleteBuffer(let dataEnd, let fileByteCount):
      guard let dataEnd else {
        return "tensor data ends beyond any representable file offset, but the file is \(fileByteCount) bytes"
      }
      if dataEnd < UInt64(fileByteCount) {
        return "tensor data ends at file offset \(dataEnd) but the file is \(fileByteCount) bytes:"
          + " \(UInt64(fileByteCount) - dataEnd) trailing bytes not covered by any tensor"
      }
      return "file is truncated: tensor data ends at file offset \(dataEnd) but the file is only"
        + " \(fileByteCount) bytes (\(dataEnd - UInt64(fileByteCount)) bytes missing)"
    case .reservedTensorName:
      return "a tensor cannot be named __metadata__; the format reserves that key"
    case .negativeDimension(let tensor, let shape):
      return "shape \(shape) of tensor '\(tensor)' has a negative dimension"
    case .tensorNotFound(let name):
      return "no tensor named '\(name)'"
    case .elementSizeMismatch(let tensor, let dtype, let requestedByteWidth):
      return "tensor '\(tensor)' is \(dtype) (\(dtype.bitWidth) bits per element) and cannot be read as"
        + " \(requestedByteWidth)-byte elements"
    case .writeOutOfBounds(let tensor, let offset, let byteCount, let tensorByteCount):
      return "write of \(byteCount) bytes at byte \(offset) of tensor '\(tensor)' does not fit in its"
        + " \(tensorByteCount) bytes"
    case .overlappingWrite(let tensor, let offset, let byteCount):
      return "write of \(byteCount) bytes at byte \(offset) of tensor '\(tensor)' overlaps bytes already written"
    case .incompleteTensor(let tensor, let written, let expected, let incompleteCount):
      let others = incompleteCount > 1 ? " (and \(incompleteCount - 1) more incomplete tensors)" : ""
      return "tensor '\(tensor)' was not completely written: \(written) of \(expected) bytes\(others)"
    case .writerClosed:
      return "the writer was already committed or abandoned"
    case .io(let error):
      return error.description
    }
  }
}

/// A safetensors error together with the file it concerns.
public struct SafeTensorsFileError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The file's path, as given.
  public var path: String
  /// What went wrong.
  public var error: SafeTensorsError

  public init(path: String, error: SafeTensorsError) {
    self.path = path
    self.error = error
  }

  /// `model-00002.safetensors: invalid offset for tensor 'x': ...`. I/O errors already name the path.
  public var description: String {
    if case .io = error { return error.description }
    return "\(path): \(error)"
  }
}

/// A kind of file that is commonly mistaken for a safetensors file, recognized from its first 8 bytes.
public enum ForeignFileKind: String, Sendable, Equatable {
  case gitLFSPointer = "a Git LFS pointer"
  case html = "an HTML page"
  case zip = "a zip archive (such as a PyTorch .pt/.bin checkpoint)"
  case pickle = "a Python pickle (such as a PyTorch .bin checkpoint)"

  /// What to tell the user.
  public var advice: String {
    switch self {
    case .gitLFSPointer: "this looks like a Git LFS pointer, not the real file; run `git lfs pull`"
    case .html: "this looks like an HTML page (a failed or login-walled download), not a safetensors file"
    case .zip, .pickle: "this looks like \(rawValue), not a safetensors file"
    }
  }

  /// Recognizes the kind from the first bytes of a file (at least 8), or `nil`.
  public static func sniff(_ firstBytes: UnsafeRawBufferPointer) -> ForeignFileKind? {
    let prefix = Array(firstBytes.prefix(8))
    func starts(_ text: String) -> Bool { prefix.starts(with: Array(text.utf8)) }
    if starts("version ") { return .gitLFSPointer }
    if starts("<!DOCTYP") || starts("<!doctyp") || starts("<html") || starts("<HTML") { return .html }
    if prefix.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .zip }
    if prefix.first == 0x80 { return .pickle }
    return nil
  }
}
