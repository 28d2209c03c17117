import Dispatch
import SafeTensors
import Synchronization
import SystemIO
import TensorCore

/// Writes a plan's output files: all of them, or the share of one part (`--part I/N`).
///
/// Whole tensors are copied file-to-file with `copy_file_range` (no user-space buffer); tensor-parallel
/// slices are gathered through one bounded buffer per worker. Memory use does not depend on the
/// checkpoint's size. Every file appears under its final name only when complete (`AtomicOutputFile`).
public enum ShardWriter {
  /// The most bytes a slice gather holds in memory at once, per worker.
  public static let gatherBufferByteCount = 8 << 20
  /// The most files written at once (the disk, not the CPU, is the limit of a copy).
  public static let maximumWorkers = 4

  /// Writes the files of part `part` (0-based) of `partCount` into `outputDirectory`, several at a time.
  ///
  /// - Parameters:
  ///   - resume: keep a file already complete under its final name (`isComplete`): a part rerun after a
  ///     kill or a requeue redoes only what it had not finished.
  ///   - progress: called with the number of tensor bytes just written (from any thread).
  /// - Returns: the indices (into `plan.files`) of the part's files (written or kept).
  @discardableResult
  public static func write(
    _ plan: ShardPlan, to outputDirectory: String, part: Int = 0, of partCount: Int = 1, resume: Bool = false,
    progress: (@Sendable (Int) -> Void)? = nil
  ) throws -> [Int] {
    let assignment = plan.partAssignment(partCount: partCount)
    let mine = plan.files.indices.filter { assignment[$0] == part }
    try createDirectories(plan, outputDirectory)
    let sources = SourceFiles(plan.source)
    defer { sources.closeAll() }
    let next = Atomic<Int>(0)
    let failure = Mutex<(any Error)?>(nil)
    let workers = max(1, min(Parallel.defaultThreadCount, maximumWorkers, mine.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: gatherBufferByteCount, alignment: 64)
      defer { buffer.deallocate() }
      while failure.withLock({ $0 == nil }) {
        let k = next.wrappingAdd(1, ordering: .relaxed).oldValue
        guard k < mine.count else { break }
        do {
          if resume, try isComplete(plan, mine[k], outputDirectory) {
            progress?(plan.files[mine[k]].tensorByteCount)
            continue
          }
          try writeFile(plan, mine[k], outputDirectory, sources, buffer, progress)
        } catch {
          failure.withLock { if $0 == nil { $0 = error } }
        }
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    return mine
  }

  /// Creates `OUT` and the device directories.
  static func createDirectories(_ plan: ShardPlan, _ outputDirectory: String) throws {
    try ensureDirectory(outputDirectory)
    for device in plan.devices where !device.directory.isEmpty {
      try ensureDirectory(FileSystem.join(outputDirectory, device.directory))
    }
  }

  /// Creates `path` unless it exists; tolerates another part creating it at the same moment.
  public static func ensureDirectory(_ path: String) throws {
    guard !FileSystem.isDirectory(path) else { return }
    do { try FileSystem.createDirectory(path) } catch {
      if !FileSystem.isDirectory(path) { throw error }
    }
  }

  /// Whether file `index` of `plan` is already complete in `outputDirectory`: present under its final name
  /// with the planned size and header. Files appear under their final names only once complete
  /// (`AtomicOutputFile`) and a part joins only a directory holding its own plan (`ShardOutput`), so such a
  /// file is this job's; `--finalize` hashes it against the part's receipt all the same.
  static func isComplete(_ plan: ShardPlan, _ index: Int, _ outputDirectory: String) throws -> Bool {
    let path = FileSystem.join(outputDirectory, plan.files[index].relativePath)
    guard FileSystem.kind(of: path) == .file else { return false }
    let layout = try plan.layout(ofFile: index)
    let descriptor = try FileDescriptor.open(path, .readOnly)
    defer { descriptor.close() }
    guard try descriptor.byteCount() == layout.fileByteCount else { return false }
    var header = [UInt8](repeating: 0, count: layout.headerBytes.count)
    try header.withUnsafeMutableBytes { try descriptor.read(into: $0, at: 0) }
    return header == layout.headerBytes
  }

  static func writeFile(
    _ plan: ShardPlan, _ index: Int, _ outputDirectory: String, _ sources: SourceFiles,
    _ buffer: UnsafeMutableRawBufferPointer, _ progress: (@Sendable (Int) -> Void)?
  ) throws {
    let file = plan.files[index]
    let layout = try plan.layout(ofFile: index)
    let tensors = plan.devices[file.device].tensors
    var byName: [String: PlannedShardTensor] = [:]
    for i in file.tensorIndices { byName[tensors[i].name] = tensors[i] }
    let path = FileSystem.join(outputDirectory, file.relativePath)
    let output = try AtomicOutputFile(path: path, byteCount: layout.fileByteCount)
    try output.write(layout.headerBytes, at: 0)
    let dataStart = layout.header.dataStart
    // Copy in source order (the layout's order is by dtype and name), so reads stay sequential.
    let entries = layout.entries.sorted { lhs, rhs in
      let a = byName[lhs.name].map { plan.source.tensors[$0.sourceIndex] }
      let b = byName[rhs.name].map { plan.source.tensors[$0.sourceIndex] }
      return (a?.fileIndex ?? 0, a?.fileOffset ?? 0) < (b?.fileIndex ?? 0, b?.fileOffset ?? 0)
    }
    for entry in entries {
      guard let planned = byName[entry.name] else { continue }
      let source = plan.source.tensors[planned.sourceIndex]
      let input = try sources.descriptor(source.fileIndex)
      let destination = dataStart + entry.dataOffsets.lowerBound
      if let slice = planned.slice, slice.indices != nil {
        // A device's experts of a fused tensor: one contiguous copy per run of experts along dim 0.
        let expertBytes = source.byteCount / max(1, source.shape.first ?? 1)
        var offset = destination
        for run in slice.runs {
          try FileCopy.copy(
            from: input, offset: source.fileOffset + run.start * expertBytes, to: output.fileDescriptor, offset: offset,
            byteCount: run.count * expertBytes)
          offset += run.count * expertBytes
        }
      } else if let slice = planned.slice {
        try copySlice(slice, of: source, from: input, to: output.fileDescriptor, at: destination, buffer: buffer)
      } else {
        try FileCopy.copy(from: input, offset: source.fileOffset, to: output.fileDescriptor, offset: destination, byteCount: source.byteCount)
      }
      progress?(planned.byteCount)
    }
    try output.commit()
  }

  /// Copies the elements `slice.start..<slice.start+slice.count` along `slice.dim` of a row-major tensor:
  /// `outer` runs of `chunk` bytes, each `row` bytes apart in the source and packed in the output.
  static func copySlice(
    _ slice: TensorSlice, of source: SourceTensor, from input: FileDescriptor, to output: FileDescriptor, at destination: Int,
    buffer: UnsafeMutableRawBufferPointer
  ) throws {
    let elementBytes = source.dtype.byteWidth ?? 1
    let outer = source.shape[..<slice.dim].reduce(1, *)
    let inner = source.shape[(slice.dim + 1)...].reduce(1, *) * elementBytes
    let row = source.shape[slice.dim] * inner
    let chunk = slice.count * inner
    let skip = slice.start * inner
    if outer == 1 || chunk >= gatherBufferByteCount / 2 {
      // Contiguous (dim 0) or large runs: one in-kernel copy per run.
      for o in 0..<outer {
        try FileCopy.copy(from: input, offset: source.fileOffset + o * row + skip, to: output, offset: destination + o * chunk, byteCount: chunk)
      }
      return
    }
    // Small runs (dim-1 splits): read whole rows through the buffer, pack the runs, write once.
    let rowsPerRead = max(1, buffer.count / max(row, 1))
    guard row <= buffer.count else {
      for o in 0..<outer {
        try FileCopy.copy(from: input, offset: source.fileOffset + o * row + skip, to: output, offset: destination + o * chunk, byteCount: chunk)
      }
      return
    }
    var o = 0
    while o < outer {
      let rows = min(rowsPerRead, outer - o)
      let region = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(rows * row)])
      try input.read(into: region, at: source.fileOffset + o * row)
      // Pack in place: run r moves from r*row+skip to r*chunk; destinations never pass their sources.
      for r in 0..<rows {
        let from = region.baseAddress! + r * row + skip
        let to = region.baseAddress! + r * chunk
        if from != to { to.copyMemory(from: UnsafeRawPointer(from), byteCount: chunk) }
      }
      try output.write(UnsafeRawBufferPointer(rebasing: region[0..<(rows * chunk)]), at: destination + o * chunk)
      o += rows
    }
  }
}

/// Read-only descriptors of the source shards, opened on first use and shared by all workers
/// (`pread` and `copy_file_range` take explicit offsets, so sharing is safe).
final class SourceFiles: Sendable {
  private let paths: [String]
  private let descriptors: Mutex<[FileDescriptor?]>

  init(_ source: ShardSource) {
    paths = source.fileNames.map { FileSystem.join(source.directory, $0) }
    descriptors = Mutex([FileDescriptor?](repeating: nil, count: source.fileNames.count))
  }

  func descriptor(_ index: Int) throws -> FileDescriptor {
    try descriptors.withLock { (open: inout [FileDescriptor?]) throws -> FileDescriptor in
      if let existing = open[index] { return existing }
      let descriptor = try FileDescriptor.open(paths[index], .readOnly)
      open[index] = descriptor
      return descriptor
    }
  }

  func closeAll() {
    descriptors.withLock { open in
      for descriptor in open { descriptor?.close() }
      open = open.map { _ in nil }
    }
  }
}
