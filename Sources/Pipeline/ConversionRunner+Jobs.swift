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

/// The runner's work on one output file: its jobs cut into work items (row ranges), run on the workers, each
/// tensor finished (its statistics, its non-finite report) when its last item is done.
extension ConversionRunner {
  // MARK: - One output file

  /// Converts the jobs of one output file on `workerCount` workers; returns their tensor reports.
  func convertFile(_ jobIndices: [Int], context: FileContext, progress: @Sendable (Int) -> Void) throws -> [TensorReport] {
    var jobStates: [JobState] = []
    var workList: [WorkItem] = []
    for jobIndex in jobIndices {
      let state = try JobState(job: plan.jobs[jobIndex], checkpoint: checkpoint)
      let chunks = try workItems(for: state, stateIndex: jobStates.count)
      state.expect(itemCount: chunks.count)
      jobStates.append(state)
      workList += chunks
    }
    let (items, states) = (workList, jobStates)
    let cursor = Mutex(0)
    let failure = Mutex<(any Error)?>(nil)
    let reports = Mutex([TensorReport]())
    let workers = max(1, min(workerCount, items.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      let scratch = WorkerScratch()
      defer { scratch.deallocate() }
      while failure.withLock({ $0 == nil }) {
        let next = cursor.withLock { value -> Int in
          defer { value += 1 }
          return value
        }
        guard next < items.count else { return }
        let item = items[next]
        let state = states[item.stateIndex]
        do {
          try process(item, state, context, scratch)
          try checkpoint.checkInputsUnchanged(thorough: false)
          if state.itemFinished(), let report = try finish(state, context) {
            reports.withLock { $0.append(report) }
          }
          progress(item.sourceByteCount)
        } catch {
          failure.withLock { if $0 == nil { $0 = error } }
        }
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    return reports.withLock { $0 }
  }

  /// The work items of a job: row chunks aligned to the source's and target's block rows (one item for a
  /// copy, and for per-tensor FP8 scaling, which needs the whole tensor's maximum first).
  private func workItems(for state: JobState, stateIndex: Int) throws -> [WorkItem] {
    let job = state.job
    func whole() -> [WorkItem] { [WorkItem(stateIndex: stateIndex, rows: 0..<job.rows, sourceByteCount: job.sourceByteCount)] }
    // Sources decode by row ranges aligned to their own blocks; 4-bit sources decode whole.
    guard WeightDecoding.streamsRows(job.group.storage), let source = state.sourceGeometry else { return whole() }
    var alignment = source.rowAlignment
    switch job.action {
    case .copy, .group, .repack: return whole()
    case .cast: break
    case .fp8(let scheme, _):
      switch scheme {
      case .block(let r, _): alignment = leastCommonMultiple(alignment, max(1, r))
      case .channel: break
      case .tensor: return whole()
      }
    }
    guard job.rows > 0 else { return whole() }
    let step = chunkRows(job, alignment: alignment)
    var items: [WorkItem] = []
    var row = 0
    while row < job.rows {
      let end = min(job.rows, row + step)
      // Shares of the job's source bytes that add up exactly, for the progress bar.
      let share = job.sourceByteCount * end / job.rows - job.sourceByteCount * row / job.rows
      items.append(WorkItem(stateIndex: stateIndex, rows: row..<end, sourceByteCount: share))
      row = end
    }
    return items
  }

  /// Rows per chunk: a multiple of `alignment`, about `chunkElements` elements.
  private func chunkRows(_ job: ConversionJob, alignment: Int) -> Int {
    let rows = max(1, chunkElements / max(1, job.columns))
    return max(alignment, rows / alignment * alignment)
  }

  // MARK: - Work items

  private func process(_ item: WorkItem, _ state: JobState, _ context: FileContext, _ scratch: WorkerScratch) throws {
    switch state.job.action {
    case .copy:
      try copyTensors(state.job, context)
    case .cast(let dtype):
      try castRows(item.rows, state, to: dtype, context, scratch)
    case .group(let groupJob):
      let report = try quantizeGroup(state.job, groupJob) { name, bytes in try context.write(tensorNamed: name, bytes: bytes) }
      state.groupReport.withLock { $0 = report }
    case .repack(let layout):
      let report = try repackGroup(state.job, layout) { name, bytes in try context.write(tensorNamed: name, bytes: bytes) }
      state.groupReport.withLock { $0 = report }
    case .fp8(let scheme, let rule):
      if case .tensor = scheme {
        try quantizeTensorFP8(state, rule: rule, context, scratch)
      } else {
        try quantizeRowsFP8(item.rows, state, scheme: scheme, rule: rule, context, scratch)
      }
    }
  }

  /// Once per job, after its last item: writes what depends on every chunk and reports the error.
  private func finish(_ state: JobState, _ context: FileContext) throws -> TensorReport? {
    let job = state.job
    let errors = state.errors.withLock { $0 }
    switch job.action {
    case .copy:
      return nil
    case .group, .repack:
      return state.groupReport.withLock { $0 }
    case .cast(let dtype):
      let nonFinite = state.nonFinite.withLock { $0 }
      let saturated = state.saturated.withLock { $0 }
      return TensorReport(
        name: job.outputs[0].name, action: "cast \(dtype)", method: "cast", snrDecibels: errors.snrDecibels,
        maxAbsoluteError: errors.maxAbsoluteError, nonFiniteCount: nonFinite.count, firstNonFiniteIndex: nonFinite.first,
        saturatedCount: saturated.count, firstSaturatedIndex: saturated.first)
    case .fp8(let scheme, _):
      guard let scales = state.outputScales else { return nil }
      let scale = job.outputs[1]
      let scaleBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: scales.buffer.count * (scale.dtype.bitWidth / 8), alignment: 64)
      defer { scaleBytes.deallocate() }
      do { try ElementCodec.encode(UnsafeBufferPointer(scales.buffer), to: scale.dtype, into: scaleBytes) } catch {
        throw ConversionError.numeric(tensor: scale.name, reason: "\(error)")
      }
      try context.write(tensorNamed: scale.name, bytes: UnsafeRawBufferPointer(scaleBytes))
      return TensorReport(
        name: job.outputs[0].name, action: "fp8 \(scheme)", snrDecibels: errors.snrDecibels,
        maxAbsoluteError: errors.maxAbsoluteError)
    }
  }

  /// `.copy`: the tensors' bytes file to file (`copy_file_range`).
  private func copyTensors(_ job: ConversionJob, _ context: FileContext) throws {
    for tensor in job.outputs {
      guard let location = checkpoint.location(of: tensor.name) else {
        throw CheckpointError.unknownTensor(name: tensor.name, checkpoint: checkpoint.directory)
      }
      let file = checkpoint.files[location.fileIndex]
      try context.copy(
        tensorNamed: tensor.name, from: try context.sources.descriptor(location.fileIndex),
        sourceFileOffset: file.header.fileRange(of: location.entry).lowerBound)
    }
  }

  /// `.cast`: rows of the weight, dequantized or cast to `dtype`, with the round-trip error.
  ///
  /// FP8 block sources are dequantized to F32 (the exact `f32(q) * scale`, DeepSeek's `weight_dequant`),
  /// then rounded to `dtype`; plain sources are decoded to F32 and encoded. The error is measured between
  /// that F32 reference and the encoded output.
  private func castRows(
    _ rows: Range<Int>, _ state: JobState, to dtype: DType, _ context: FileContext, _ scratch: WorkerScratch
  ) throws {
    let job = state.job
    let name = job.outputs[0].name
    let count = rows.count * job.columns
    let outputWidth = dtype.bitWidth / 8
    if job.group.storage == .fp8Block, dtype == .bfloat16 || dtype == .float32 {
      // DeepSeek's release -> BF16 (or F32): one pass from the mapped codes to the output buffer.
      let (codes, scales, layout) = try state.fp8Source(rows: rows)
      let encoded = scratch.bytes(.output, count * outputWidth)
      // NaN codes, and products too large for the output (a huge scale), give NaN/inf results: they are
      // carried into the output and reported; the statistics skip them, so such a chunk takes the scalar path.
      let nanCodes = NonFinite.scanE4M3(codes)
      if dtype == .bfloat16 {
        var errors = nanCodes.count == 0
          ? FusedFP8.dequantizeToBF16(codes, scales: scales, layout: layout, into: encoded)
          : FusedFP8.dequantizeToBF16Reference(codes, scales: scales, layout: layout, into: encoded)
        let produced = NonFinite.scanEncodedBF16(UnsafeRawBufferPointer(encoded))
        if produced.count > 0 {
          if nanCodes.count == 0 { errors = FusedFP8.dequantizeToBF16Reference(codes, scales: scales, layout: layout, into: encoded) }
          state.addNonFinite(produced.count, first: produced.first.map { rows.lowerBound * job.columns + $0 })
        }
        state.addErrors(errors)
      } else {
        do { try BlockFP8.dequantize(codes, scales: scales, layout: layout, to: .float32, into: encoded) } catch {
          throw ConversionError.numeric(tensor: name, reason: "\(error)")
        }
        let produced = NonFinite.scan(UnsafeBufferPointer(encoded.bindMemory(to: Float.self)))
        if produced.count > 0 { state.addNonFinite(produced.count, first: produced.first.map { rows.lowerBound * job.columns + $0 }) }
        // Exact: the F32 output is the reference.
        var errors = ErrorStatistics()
        errors.add(reference: UnsafeRawBufferPointer(encoded), .float32, candidate: UnsafeRawBufferPointer(encoded), .float32, count: count)
        state.addErrors(errors)
      }
      try context.write(
        tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns * outputWidth,
        bytes: UnsafeRawBufferPointer(encoded))
      state.release(rows: rows)
      return
    }
    let reference = scratch.floats(.reference, count)
    try state.decode(rows: rows, into: reference)
    let encoded = scratch.bytes(.output, count * outputWidth)
    do { try ElementCodec.encode(UnsafeBufferPointer(reference), to: dtype, into: encoded) } catch {
      throw ConversionError.numeric(tensor: name, reason: "\(error)")
    }
    // NaN/infinite source values are carried into the output (casts saturate or keep them), values too
    // large for `dtype` become infinities: every element non-finite on either side is reported.
    let nonFinite = try NonFinite.castResults(
      reference: UnsafeBufferPointer(reference), encoded: UnsafeRawBufferPointer(encoded), dtype: dtype,
      scratch: scratch.floats(.roundTrip, count))
    if nonFinite.count > 0 { state.addNonFinite(nonFinite.count, first: nonFinite.first.map { rows.lowerBound * job.columns + $0 }) }
    if let limit = NonFinite.saturationLimit(of: dtype) {
      let saturated = NonFinite.beyond(limit, UnsafeBufferPointer(reference))
      if saturated.count > 0 { state.addSaturated(saturated.count, first: saturated.first.map { rows.lowerBound * job.columns + $0 }) }
    }
    var errors = ErrorStatistics()
    if ErrorStatistics.dtypes.contains(dtype) {
      errors.add(reference: UnsafeRawBufferPointer(reference), .float32, candidate: UnsafeRawBufferPointer(encoded), dtype, count: count)
    } else {
      // FP8 targets: decode back to F32 first.
      let back = scratch.floats(.roundTrip, count)
      do { try ElementCodec.decode(UnsafeRawBufferPointer(encoded), dtype: dtype, into: back) } catch {
        throw ConversionError.numeric(tensor: name, reason: "\(error)")
      }
      errors.add(reference: UnsafeBufferPointer(reference), candidate: UnsafeBufferPointer(back))
    }
    state.addErrors(errors)
    try context.write(
      tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns * outputWidth,
      bytes: UnsafeRawBufferPointer(encoded))
    state.release(rows: rows)
  }

  /// `.fp8` with block or channel scales: rows of the weight quantized to E4M3 with their scales (kept
  /// in the job's scale grid until `finish`), and the error of dequantizing them again.
  ///
  /// F32/BF16/F16 sources are quantized straight from the mapped bytes; others (an FP8 source being
  /// re-scaled, F64) are decoded to F32 first.
  private func quantizeRowsFP8(
    _ rows: Range<Int>, _ state: JobState, scheme: FP8Scheme, rule: FP8ScaleRule, _ context: FileContext,
    _ scratch: WorkerScratch
  ) throws {
    let job = state.job
    let name = job.outputs[0].name
    let count = rows.count * job.columns
    let layout = try FP8BlockLayout(rows: rows.count, columns: job.columns, scheme: scheme)
    guard let grid = state.outputScales, let full = state.outputLayout else { return }
    // Chunks start on block rows of the whole tensor (a short last chunk has a shorter `layout.blockRows`).
    let firstScale = rows.lowerBound / full.blockRows * full.scaleColumns
    let scales = grid.slice(firstScale..<(firstScale + layout.scaleCount))
    let (source, sourceDType) = try state.quantizerInput(rows: rows, scratch: scratch)
    let codes = scratch.bytes(.output, count)
    do {
      try BlockFP8.quantize(source, dtype: sourceDType, layout: layout, rule: rule, weights: codes, scales: scales)
    } catch {
      throw ConversionError.numeric(tensor: name, reason: "\(QuantizationError.offsetRows(error, by: rows.lowerBound, columns: job.columns))")
    }
    try measureFP8Error(source, sourceDType, codes, UnsafeBufferPointer(scales), layout, state, scratch)
    try context.write(
      tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns, bytes: UnsafeRawBufferPointer(codes))
    state.release(rows: rows)
  }

  /// `.fp8` with one scale for the tensor: a pass over row chunks for the maximum, then a pass quantizing
  /// each chunk onto that scale (bit-identical to quantizing the whole tensor at once, in bounded memory).
  private func quantizeTensorFP8(_ state: JobState, rule: FP8ScaleRule, _ context: FileContext, _ scratch: WorkerScratch) throws {
    let job = state.job
    let name = job.outputs[0].name
    guard let grid = state.outputScales, job.rows > 0 else { return }
    let step = chunkRows(job, alignment: state.sourceGeometry?.rowAlignment ?? 1)
    var maximum: UInt32 = 0
    var row = 0
    while row < job.rows {
      let rows = row..<min(job.rows, row + step)
      let (source, dtype) = try state.quantizerInput(rows: rows, scratch: scratch)
      maximum = max(maximum, MagnitudeMaximum.bits(source, dtype, count: rows.count * job.columns))
      row = rows.upperBound
    }
    // A non-finite maximum: quantize anyway with a placeholder scale so the kernel reports the element.
    grid.buffer[0] = maximum >= 0x7F80_0000 ? 1 : rule.scale(forAbsoluteMaximum: Float(bitPattern: maximum))
    let scale = UnsafeBufferPointer(grid.slice(0..<1))
    row = 0
    while row < job.rows {
      let rows = row..<min(job.rows, row + step)
      let count = rows.count * job.columns
      let layout = try FP8BlockLayout(rows: rows.count, columns: job.columns, scheme: .tensor)
      let (source, dtype) = try state.quantizerInput(rows: rows, scratch: scratch)
      let codes = scratch.bytes(.output, count)
      do { try BlockFP8.quantize(source, dtype: dtype, layout: layout, givenScales: scale, weights: codes) } catch {
        throw ConversionError.numeric(tensor: name, reason: "\(QuantizationError.offsetRows(error, by: rows.lowerBound, columns: job.columns))")
      }
      try measureFP8Error(source, dtype, codes, scale, layout, state, scratch)
      try context.write(tensorNamed: name, atByteOffsetWithinTensor: rows.lowerBound * job.columns, bytes: UnsafeRawBufferPointer(codes))
      state.release(rows: rows)
      row = rows.upperBound
    }
  }

  /// Adds the error of `codes` with `scales` against `source` to the job (one fused pass).
  private func measureFP8Error(
    _ source: UnsafeRawBufferPointer, _ sourceDType: DType, _ codes: UnsafeMutableRawBufferPointer,
    _ scales: UnsafeBufferPointer<Float>, _ layout: FP8BlockLayout, _ state: JobState, _ scratch: WorkerScratch
  ) throws {
    // What the consumer reads back: the decoder multiplies in the stored scale dtype (F32 for DeepSeek).
    let readDType = state.job.outputs.count > 1 ? state.job.outputs[1].dtype : .float32
    state.addErrors(
      FusedFP8.quantizationError(
        source: source, sourceDType, codes: UnsafeRawBufferPointer(codes), scales: scales, layout: layout, readDType: readDType))
  }
}
