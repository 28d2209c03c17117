// Helper of scripts/bench-inspect: JSON throughput of Smelt's header and index parsers, one thread.
//
//   bench-headers DIR [REPEATS]
//
// Reads every *.safetensors header of the checkpoint in DIR (the 8 length bytes and the JSON) and the index
// into memory, then parses them REPEATS times (default 7): `SafeTensorsHeader.parse` for the headers,
// `CheckpointIndex(json:)` (which also makes a String per key) for the index. Prints one line per parser:
// "name bytes median_seconds MB/s", where seconds are this thread's CPU time (so a busy machine does not
// count against the parser) and MB/s = bytes / median / 1e6.
import Checkpoint
import Glibc
import SafeTensors
import SystemIO

func threadSeconds() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

func median(_ values: [Double]) -> Double {
  let sorted = values.sorted()
  return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
  print("usage: bench-headers DIR [REPEATS]")
  exit(64)
}
let directory = arguments[1]
let repeats = arguments.count > 2 ? Int(arguments[2]) ?? 7 : 7

var headers: [(prefix: [UInt8], fileByteCount: Int)] = []
for name in try FileSystem.contents(of: directory).sorted() where name.hasSuffix(".safetensors") {
  let fd = try FileDescriptor.open(FileSystem.join(directory, name), .readOnly)
  defer { fd.close() }
  let size = try fd.byteCount()
  var first = [UInt8](repeating: 0, count: 8)
  try first.withUnsafeMutableBytes { try fd.read(into: $0, at: 0) }
  let n = first.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
  var prefix = [UInt8](repeating: 0, count: 8 + n)
  try prefix.withUnsafeMutableBytes { try fd.read(into: $0, at: 0) }
  headers.append((prefix, size))
}
let headerBytes = headers.reduce(0) { $0 + $1.prefix.count - 8 }
var tensorCount = 0
var seconds: [Double] = []
for _ in 0..<repeats {
  let start = threadSeconds()
  var count = 0
  for (prefix, size) in headers {
    count += try prefix.withUnsafeBytes { try SafeTensorsHeader.parse(prefix: $0, fileByteCount: size) }.tensors.count
  }
  seconds.append(threadSeconds() - start)
  tensorCount = count
}
let headerSeconds = median(seconds)
print("headers \(headerBytes) \(headerSeconds) \(Double(headerBytes) / headerSeconds / 1e6) \(headers.count) files \(tensorCount) tensors")

let indexPath = FileSystem.join(directory, "model.safetensors.index.json")
if FileSystem.exists(indexPath) {
  let index = try FileSystem.readFile(indexPath)
  seconds = []
  var entries = 0
  for _ in 0..<repeats {
    let start = threadSeconds()
    entries = try CheckpointIndex(json: index, path: indexPath).weightMap.count
    seconds.append(threadSeconds() - start)
  }
  let indexSeconds = median(seconds)
  print("index \(index.count) \(indexSeconds) \(Double(index.count) / indexSeconds / 1e6) \(entries) entries")
}
