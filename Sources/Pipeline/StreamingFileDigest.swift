import Dispatch
import Synchronization
import Checkpoint
import SystemIO

/// The SHA-256 of an output file, computed while the file is being written.
///
/// Writers report each range they finished (`didWrite`); a background thread hashes the file's bytes in
/// order as soon as the written prefix grows, reading them back from the page cache. When outputs are
/// written roughly in file order (a BF16 dequantization: one dtype, tensors in name order) hashing
/// overlaps the conversion instead of following it; otherwise it simply catches up at the end. SHA-256
/// is sequential, so one thread per file.
final class StreamingFileDigest: Sendable {
  private let descriptor: FileDescriptor
  /// The file mapped read-only: hashing reads the page cache in place (no copy). Pages written later through
  /// `pwrite` are the same page-cache pages, so they are visible here once written.
  private let mapping: MappedFile
  private let byteCount: Int
  private let progress = Mutex(Progress())
  private let wake = DispatchSemaphore(value: 0)
  private let finished = DispatchSemaphore(value: 0)
  private let result = Mutex<Result<String, SystemError>?>(nil)  // failure: reserved for I/O errors

  private struct Progress {
    /// Sorted, disjoint, merged byte ranges written so far.
    var ranges: [Range<Int>] = []
    var cancelled = false
  }

  /// Starts hashing `path` (`byteCount` bytes once complete), which is being written.
  init(path: String, byteCount: Int) throws {
    descriptor = try FileDescriptor.open(path, .readOnly)
    do {
      mapping = try MappedFile(path: path)
    } catch {
      descriptor.close()
      throw error
    }
    guard mapping.byteCount == byteCount else {
      descriptor.close()
      throw SystemError("hash", path: path, code: 22, detail: "file is \(mapping.byteCount) bytes, expected \(byteCount)")
    }
    self.byteCount = byteCount
    DispatchQueue(label: "smelt.digest.stream").async { [self] in hashInOrder() }
  }

  deinit { descriptor.close() }

  /// Records that `range` of the file is written and final.
  func didWrite(_ range: Range<Int>) {
    guard !range.isEmpty else { return }
    progress.withLock { StreamingFileDigest.insert(range, into: &$0.ranges) }
    wake.signal()
  }

  /// Starts writing `range` back to disk now (`POSIX_FADV_DONTNEED` on dirty pages initiates writeback
  /// without waiting; clean pages of the range leave the page cache). The final `fsync` then finds little
  /// left to do, and the disk works while the CPU converts.
  func startWriteback(_ range: Range<Int>) {
    guard !range.isEmpty else { return }
    descriptor.advise(.dontNeed, range: range)
  }

  /// Stops hashing (the file will not be completed).
  func cancel() {
    progress.withLock { $0.cancelled = true }
    wake.signal()
  }

  /// Waits for the digest of the whole file (every byte must have been reported by `didWrite`).
  func digest() throws -> String {
    finished.wait()
    finished.signal()
    guard let outcome = result.withLock({ $0 }) else { throw SystemError("hash", path: descriptor.path, code: 125, detail: "cancelled") }
    return try outcome.get()
  }

  private func hashInOrder() {
    let chunk = 8 << 20
    defer { finished.signal() }
    var hasher = FileDigest.Hasher()
    var offset = 0
    while offset < byteCount {
      let (available, cancelled) = progress.withLock { state -> (Int, Bool) in
        let end = state.ranges.first.map { $0.lowerBound == 0 ? $0.upperBound : 0 } ?? 0
        return (end, state.cancelled)
      }
      if cancelled { return }
      guard available > offset else {
        wake.wait()
        continue
      }
      let n = min(chunk, available - offset)
      hasher.update(UnsafeRawBufferPointer(rebasing: mapping.bytes[offset..<(offset + n)]))
      // Hashed pages leave this process's resident set (they stay in the page cache).
      mapping.advise(.dontNeed, range: offset..<(offset + n))
      offset += n
    }
    let digest = hasher.finalizeHex()
    // Another process truncated the file being written: what was hashed after that read as zeros.
    do throws(SystemError) { try mapping.checkNotTruncated() } catch {
      result.withLock { $0 = .failure(error) }
      return
    }
    result.withLock { $0 = .success(digest) }
  }

  /// Inserts `range` into sorted disjoint `ranges`, merging with touching or overlapping neighbours.
  static func insert(_ range: Range<Int>, into ranges: inout [Range<Int>]) {
    var low = 0
    var high = ranges.count
    while low < high {
      let mid = (low + high) / 2
      if ranges[mid].lowerBound < range.lowerBound { low = mid + 1 } else { high = mid }
    }
    var merged = range
    var start = low
    if start > 0, ranges[start - 1].upperBound >= merged.lowerBound {
      start -= 1
      merged = ranges[start].lowerBound..<max(ranges[start].upperBound, merged.upperBound)
    }
    var end = low
    while end < ranges.count, ranges[end].lowerBound <= merged.upperBound {
      merged = merged.lowerBound..<max(ranges[end].upperBound, merged.upperBound)
      end += 1
    }
    ranges.replaceSubrange(start..<end, with: [merged])
  }
}
