#if canImport(Glibc)
  @preconcurrency import Glibc
#endif
import SafeTensors
import SystemIO
import TensorCore

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
  let path: String

  init() {
    var template = Array("/tmp/smelt-st-test-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed")
    path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
  }

  func file(_ name: String) -> String { path + "/" + name }

  func remove() { try? FileSystem.removeTree(path) }
}

/// Bytes from a hex string (test vectors).
func bytes(hex: String) -> [UInt8] {
  var result: [UInt8] = []
  var high: UInt8? = nil
  for c in hex.utf8 {
    let v: UInt8 = c <= 57 ? c - 48 : c - 87
    if let h = high {
      result.append(h << 4 | v)
      high = nil
    } else {
      high = v
    }
  }
  return result
}

/// Runs `body`, returning the `SafeTensorsError` it throws (or nil).
func parseError(_ file: [UInt8]) -> SafeTensorsError? {
  do {
    _ = try SafeTensorsHeader.parse(fileBytes: file)
    return nil
  } catch {
    return error
  }
}

/// A safetensors file from header JSON text (padded with spaces to 8) and data bytes.
func makeFile(_ json: String, data: [UInt8] = []) -> [UInt8] {
  var header = Array(json.utf8)
  header += Array(repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
  var file: [UInt8] = []
  withUnsafeBytes(of: UInt64(header.count).littleEndian) { file += $0 }
  return file + header + data
}

/// The error opening `path` as a safetensors file throws, or nil when it opens.
func openError(_ path: String) -> SafeTensorsFileError? {
  do {
    _ = try SafeTensorsFile(path: path)
    return nil
  } catch {
    return error
  }
}
