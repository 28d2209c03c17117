import Checkpoint
import Dispatch
import JobParts
import JSON
import Quantization
import SafeTensors
import Synchronization
import SystemIO
import TensorCore
import WeightFormats

/// One unit of work: rows of one job (all rows for copies and per-tensor scaling).
struct WorkItem: Sendable {
  var stateIndex: Int
  var rows: Range<Int>
  /// This item's share of the job's source bytes (shares add up to `sourceByteCount`).
  var sourceByteCount: Int
}

/// What every work item of a file writes to: the container's writer, and the digest that follows it.
struct FileContext: Sendable {
  let writer: any OutputFileWriter
  let sources: SourceFiles
  /// `nil` for a shared file, hashed by ranges once this part's share of it is synced.
  let digest: StreamingFileDigest?

  /// Writes all of tensor `name`.
  func write(tensorNamed name: String, bytes: UnsafeRawBufferPointer) throws {
    try write(tensorNamed: name, atByteOffsetWithinTensor: 0, bytes: bytes)
  }

  /// Writes part of tensor `name`, reports the file range to the digest and starts writing it back.
  func write(tensorNamed name: String, atByteOffsetWithinTensor offset: Int, bytes: UnsafeRawBufferPointer) throws {
    try writer.write(tensorNamed: name, atByteOffsetWithinTensor: offset, bytes: bytes)
    if let tensor = writer.fileRange(ofTensor: name) {
      let range = (tensor.lowerBound + offset)..<(tensor.lowerBound + offset + bytes.count)
      digest?.didWrite(range)
      digest?.startWriteback(range)
    }
  }

  /// Copies tensor `name` file to file and reports it to the digest.
  func copy(tensorNamed name: String, from source: FileDescriptor, sourceFileOffset: Int) throws {
    try writer.copy(tensorNamed: name, from: source, sourceFileOffset: sourceFileOffset)
    if let range = writer.fileRange(ofTensor: name) { digest?.didWrite(range) }
  }
}

/// A job being converted: its source views, scales and results, shared by its work items.
final class JobState: Sendable {
  let job: ConversionJob
  /// The source weight's mapped codes, for row-streamed plain and FP8-block sources (nil otherwise).
  let weight: TensorView?
  /// The source's geometry (nil for copies).
  let sourceGeometry: WeightGeometry?
  /// An FP8 block source's F32 scales, copied once (read-only after `init`; freed in `deinit`).
  private let sourceScales: DisjointMutableBuffer<Float>
  /// The output scale grid of an FP8 job, filled chunk by chunk (disjoint row ranges).
  let outputScales: DisjointMutableBuffer<Float>?
  /// The whole tensor's FP8 layout, for FP8 jobs.
  let outputLayout: FP8BlockLayout?
  let errors = Mutex(ErrorStatistics())
  /// Non-finite source values seen by a cast: how many, and the smallest flat index.
  let nonFinite = Mutex((count: 0, first: Int?.none))
  /// Finite source values an FP8 cast saturated to ±max: how many, and the smallest flat index.
  let saturated = Mutex((count: 0, first: Int?.none))
  /// A group-format or repack job's report (its single work item converts the whole weight).
  let groupReport = Mutex(TensorReport?.none)
  /// The checkpoint, for sources decoded through `WeightDecoding`.
  private let checkpoint: Checkpoint
  private let remainingItems = Mutex(0)

  init(job: ConversionJob, checkpoint: Checkpoint) throws {
    self.job = job
    self.checkpoint = checkpoint
    try checkpoint.checkScales(of: job.group)
    var streamed = WeightDecoding.streamsRows(job.group.storage)
    if case .group = job.action { streamed = false }
    if case .repack = job.action { streamed = false }
    if case .copy = job.action {
      sourceGeometry = nil
      streamed = false
    } else {
      do { sourceGeometry = try WeightDecoding.geometry(of: job.group, in: checkpoint) } catch {
        throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "\(error)")
      }
    }
    if streamed, job.group.storage == .plain || job.group.storage == .fp8Block {
      (weight, sourceScales) = try JobState.mappedSource(job, checkpoint)
    } else {
      weight = nil
      sourceScales = DisjointMutableBuffer(UnsafeMutableBufferPointer(start: nil, count: 0))
    }
    if case .fp8(let scheme, _) = job.action {
      let layout = try FP8BlockLayout(rows: job.rows, columns: job.columns, scheme: scheme)
      let grid = UnsafeMutableBufferPointer<Float>.allocate(capacity: layout.scaleCount)
      grid.initialize(repeating: 0)
      outputScales = DisjointMutableBuffer(grid)
      outputLayout = layout
    } else {
      outputScales = nil
      outputLayout = nil
    }
  }

  /// The mapped weight of a plain or FP8-block source read straight from the mapping, and an FP8-block
  /// source's scales copied once (checked finite: the fused kernels do not check per chunk).
  private static func mappedSource(
    _ job: ConversionJob, _ checkpoint: Checkpoint
  ) throws -> (TensorView, DisjointMutableBuffer<Float>) {
    guard let weightName = job.group.parts["weight"] else {
      throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "no weight tensor")
    }
    let weight = try checkpoint.tensor(weightName)
    let width = weight.dtype.bitWidth / 8
    guard width > 0, weight.bytes.count >= job.rows * job.columns * width else {
      throw ConversionError.unsupported(tensor: weight.name, reason: "\(weight.dtype) \(weight.shape) does not match the plan")
    }
    guard job.group.storage == .fp8Block, let scaleName = job.group.parts[FP8WeightFormat.deepSeek.scaleRole] else {
      return (weight, DisjointMutableBuffer(UnsafeMutableBufferPointer(start: nil, count: 0)))
    }
    let scale = try checkpoint.tensor(scaleName)
    // F32 scales (DeepSeek), or BF16 (Qwen3.5 / 3.6 FP8) widened exactly.
    let values = try scale.dtype == .float32 ? scale.copyElements(as: Float.self) : scale.withUnsafeBytes { bytes in
      try [Float](unsafeUninitializedCapacity: scale.entry.elementCount) { out, initialized in
        do { try ElementCodec.decode(bytes, dtype: scale.dtype, into: out) } catch {
          throw ConversionError.badCompanion(tensor: scale.name, expected: "F32 or BF16 scales", actual: "\(scale.dtype)")
        }
        initialized = scale.entry.elementCount
      }
    }
    if let index = values.firstIndex(where: { !$0.isFinite }) {
      throw ConversionError.numeric(
        tensor: scale.name, reason: "\(QuantizationError.nonFiniteScale(scaleIndex: index, value: values[index]))")
    }
    let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
    _ = copy.initialize(from: values)
    return (weight, DisjointMutableBuffer(copy))
  }

  deinit {
    outputScales?.buffer.deallocate()
    sourceScales.buffer.deallocate()
  }

  func expect(itemCount: Int) { remainingItems.withLock { $0 = itemCount } }

  /// Marks one item done; true for the job's last one.
  func itemFinished() -> Bool {
    remainingItems.withLock { remaining in
      remaining -= 1
      return remaining == 0
    }
  }

  func addErrors(_ chunk: ErrorStatistics) { errors.withLock { $0.merge(chunk) } }

  func addNonFinite(_ count: Int, first: Int?) { JobState.add(count, first: first, to: nonFinite) }

  func addSaturated(_ count: Int, first: Int?) { JobState.add(count, first: first, to: saturated) }

  private static func add(_ count: Int, first: Int?, to counter: borrowing Mutex<(count: Int, first: Int?)>) {
    counter.withLock { total in
      total.count += count
      if let first { total.first = min(total.first ?? first, first) }
    }
  }

  private var rowByteCount: Int { job.columns * ((weight?.dtype.bitWidth ?? 8) / 8) }

  /// The stored bytes of rows `rows` of the source weight (zero-copy, in the mapping).
  func sourceBytes(rows: Range<Int>) -> UnsafeRawBufferPointer {
    guard let weight else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(rebasing: weight.bytes[(rows.lowerBound * rowByteCount)..<(rows.upperBound * rowByteCount)])
  }

  /// Drops the consumed rows' pages from this process (they stay in the page cache): the mapping would
  /// otherwise count every byte read in the resident set.
  func release(rows: Range<Int>) {
    guard let weight else { return }
    let start = weight.owner.header.fileRange(of: weight.entry).lowerBound
    weight.owner.mapping.advise(.dontNeed, range: (start + rows.lowerBound * rowByteCount)..<(start + rows.upperBound * rowByteCount))
  }

  /// The F32 values of rows `rows` into `destination` (`rows.count * columns` elements): plain sources from
  /// the mapping, everything else through the one weight decoder.
  func decode(rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
    if job.group.storage == .plain, let weight, job.transposedMatrix == nil {
      do { try ElementCodec.decode(sourceBytes(rows: rows), dtype: weight.dtype, into: destination) } catch {
        throw ConversionError.numeric(tensor: weight.name, reason: "\(error)")
      }
      return
    }
    do {
      guard let (r, c) = job.transposedMatrix else {
        try WeightDecoding.decodeRows(group: job.group, in: checkpoint, geometry: sourceGeometry, rows: rows, into: destination)
        return
      }
      // Each row of the job is one (r, c) matrix of the source, written as (c, r).
      let source = UnsafeMutableBufferPointer<Float>.allocate(capacity: destination.count)
      defer { source.deallocate() }
      try WeightDecoding.decodeRows(group: job.group, in: checkpoint, geometry: sourceGeometry, rows: rows, into: source)
      for row in 0..<rows.count {
        let base = row * job.columns
        for i in 0..<r {
          for j in 0..<c { destination[base + j * r + i] = source[base + i * c + j] }
        }
      }
    } catch {
      throw ConversionError.numeric(tensor: WeightDecoding.logicalName(of: job.group), reason: "\(error)")
    }
  }

  /// An FP8 block source's codes, scales and layout for rows `rows` (starting on a block row), for the fused
  /// FP8 → BF16 pass.
  func fp8Source(rows: Range<Int>) throws -> (UnsafeRawBufferPointer, UnsafeBufferPointer<Float>, FP8BlockLayout) {
    guard let scheme = sourceGeometry?.fp8Scales, let alignment = sourceGeometry?.rowAlignment else {
      throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "not an FP8 block source")
    }
    precondition(rows.lowerBound % alignment == 0, "fp8 source chunks start on a block row")
    let full = try FP8BlockLayout(rows: job.rows, columns: job.columns, scheme: scheme)
    let layout = try FP8BlockLayout(rows: rows.count, columns: job.columns, scheme: scheme)
    let firstScale = rows.lowerBound / full.blockRows * full.scaleColumns
    let scales = UnsafeBufferPointer(sourceScales.slice(firstScale..<(firstScale + layout.scaleCount)))
    return (sourceBytes(rows: rows), scales, layout)
  }

  /// What the FP8 quantizer reads for rows `rows`: the mapped bytes when they are F32/BF16/F16, else the
  /// values decoded to F32 in `scratch`.
  func quantizerInput(rows: Range<Int>, scratch: WorkerScratch) throws -> (UnsafeRawBufferPointer, DType) {
    if job.group.storage == .plain, let weight, BlockFP8.sourceDTypes.contains(weight.dtype) {
      return (sourceBytes(rows: rows), weight.dtype)
    }
    let values = scratch.floats(.reference, rows.count * job.columns)
    try decode(rows: rows, into: values)
    return (UnsafeRawBufferPointer(values), .float32)
  }
}

/// A worker's reusable buffers, grown on demand (never shared between threads).
final class WorkerScratch {
  enum Slot: Int, CaseIterable { case reference, roundTrip, output }
  private var buffers: [UnsafeMutableRawBufferPointer] = Slot.allCases.map { _ in UnsafeMutableRawBufferPointer(start: nil, count: 0) }

  private func raw(_ slot: Slot, _ byteCount: Int) -> UnsafeMutableRawBufferPointer {
    if buffers[slot.rawValue].count < byteCount {
      buffers[slot.rawValue].deallocate()
      buffers[slot.rawValue] = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
    }
    return UnsafeMutableRawBufferPointer(rebasing: buffers[slot.rawValue][0..<byteCount])
  }

  func floats(_ slot: Slot, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
    let bytes = raw(slot, count * 4)
    return bytes.bindMemory(to: Float.self)
  }

  func bytes(_ slot: Slot, _ count: Int) -> UnsafeMutableRawBufferPointer { raw(slot, count) }

  func deallocate() {
    for buffer in buffers { buffer.deallocate() }
    buffers = []
  }
}

/// Output-file digests computed one after another on a background queue (while the next file converts),
/// each recorded in the journal when done, with the file's stamp.
final class BackgroundDigests: Sendable {
  private let queue = DispatchQueue(label: "smelt.digest")
  private let group = DispatchGroup()
  private let results = Mutex([(name: String, sha256: String, byteCount: Int)]())
  private let failure = Mutex<(any Error)?>(nil)
  private let journal: any ConversionJournal

  init(journal: any ConversionJournal) { self.journal = journal }

  /// Waits (in the background, files in order) for `compute` and records the file (at `path`) as complete.
  func start(name: String, path: String, byteCount: Int, compute: @escaping @Sendable () throws -> String) {
    queue.async(group: group) { [self] in
      do {
        let digest = try compute()
        try journal.record(PartOutput(path: name, byteCount: byteCount, sha256: digest, stamp: FileStamp(of: path)))
        results.withLock { $0.append((name, digest, byteCount)) }
      } catch {
        failure.withLock { if $0 == nil { $0 = error } }
      }
    }
  }

  /// Waits for every digest started; throws the first failure.
  func wait() throws -> [(String, String, Int)] {
    group.wait()
    if let error = failure.withLock({ $0 }) { throw error }
    return results.withLock { $0.map { ($0.name, $0.sha256, $0.byteCount) } }
  }
}

extension QuantizationError {
  /// The error with its element and row made relative to the whole tensor, for a chunk that starts at
  /// row `offset` of a tensor with `columns` columns.
  static func offsetRows(_ error: QuantizationError, by offset: Int, columns: Int) -> QuantizationError {
    if case .nonFiniteInput(let index, let row, let column, let value) = error, offset > 0 {
      return .nonFiniteInput(elementIndex: index + offset * columns, row: row + offset, column: column, value: value)
    }
    return error
  }
}

func leastCommonMultiple(_ a: Int, _ b: Int) -> Int {
  func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
  return a / gcd(a, b) * b
}

/// Read descriptors for the checkpoint's files (for `copy_file_range`), opened once.
final class SourceFiles: Sendable {
  private let descriptors: [FileDescriptor]
  init(checkpoint: Checkpoint) throws {
    descriptors = try checkpoint.files.map { try FileDescriptor.open($0.path, .readOnly) }
  }
  func descriptor(_ index: Int) throws -> FileDescriptor { descriptors[index] }
  func close() { for descriptor in descriptors { descriptor.close() } }
}
