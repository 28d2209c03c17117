import Checkpoint
import GGUF
import JobParts
import SystemIO

/// A split GGUF conversion (`convert IN OUT.gguf --to gguf-<preset> --part I/N`), on the same seam as the
/// safetensors route: the tensors, in write order, balanced by bytes of work (`PartBalancer`; a GGUF is
/// usually one large file, so it is cut into runs of tensors and shared by the parts); each part writes
/// its tensors' byte ranges and records them in its receipt (`PartSession`); `--finalize` checks every
/// file against the receipts and publishes it (`PartFiles.finalize`).
extension GGUFConversionPlan {
  /// A tensor's bytes of work: what it reads plus what it writes.
  public func workBytes(ofTensor index: Int) -> Int { tensors[index].sourceByteCount + tensors[index].info.byteCount }

  /// The 0-based part of every tensor (parallel to `tensors`), balanced by bytes of work; a pure function
  /// of the plan, so every part computes the same split on its own.
  public func partition(partCount: Int) -> [Int] {
    PartBalancer.assign(unitCosts: tensors.indices.map(workBytes(ofTensor:)), fileOfUnit: tensors.map(\.file), partCount: partCount)
  }

  /// The bytes tensor `index` owns in its file: its data and the zero padding up to the next tensor (or
  /// the end of the file), so the parts' ranges and the header cover a shared file completely.
  public func slot(ofTensor index: Int) -> Range<Int> {
    let tensor = tensors[index]
    let layout = layouts[tensor.file]
    let start = layout.fileOffset(ofTensor: tensor.indexInFile)
    let next = tensor.indexInFile + 1
    return start..<(next < layout.tensors.count ? layout.fileOffset(ofTensor: next) : layout.fileByteCount)
  }

  /// The tensors of file `file` that part `part` writes, in write order.
  func tensors(ofFile file: Int, part: Int, assignment: [Int]) -> [Int] {
    tensors.indices.filter { tensors[$0].file == file && assignment[$0] == part }
  }

  /// What `--finalize` checks: every file, written whole by one part or shared by several.
  public func partFiles(partCount: Int) -> [PlannedPartFile] {
    let assignment = partition(partCount: partCount)
    return layouts.indices.map { file in
      let parts = Set(tensors.indices.filter { tensors[$0].file == file }.map { assignment[$0] }).sorted()
      let writers: PlannedPartFile.Writers =
        parts.count <= 1
        ? .whole(part: parts.first ?? 0)
        : .shared(parts.map { part in
          (part, ConversionRunner.merged(tensors(ofFile: file, part: part, assignment: assignment).map(slot(ofTensor:))))
        })
      return PlannedPartFile(
        name: FileSystem.split(paths[file]).name, path: paths[file], byteCount: layouts[file].fileByteCount,
        header: layouts[file].headerBytes, writers: writers)
    }
  }
}

extension GGUFConversionRunner {
  /// Writes the share of `session.part` and marks the part finished: files it writes alone under their
  /// final names (temporary name + rename), its tensors of shared files into their shared temporary names
  /// (the header, its tensors and their padding). Each is recorded in the receipt once synced; with
  /// `--resume` (`session.previous`), what an earlier run recorded and still hashes the same is kept.
  /// - Parameter progress: output bytes finished since the last call.
  public func runPart(_ session: PartSession, progress: @Sendable (Int) -> Void) throws -> GGUFConversionReport {
    let clock = ContinuousClock()
    let start = clock.now
    let part = session.part
    let assignment = plan.partition(partCount: part.count)
    let completed = session.previous != nil ? session.completed() : [:]
    var report = GGUFConversionReport(
      tensorCount: 0, sourceByteCount: 0, outputByteCount: 0, seconds: 0, filesWritten: [], filesResumed: [])
    for (file, layout) in plan.layouts.enumerated() {
      let mine = plan.tensors(ofFile: file, part: part.index, assignment: assignment)
      guard !mine.isEmpty else { continue }
      let path = plan.paths[file]
      let name = FileSystem.split(path).name
      let whole = mine.count == layout.tensors.count
      report.tensorCount += mine.count
      report.sourceByteCount += mine.reduce(0) { $0 + plan.tensors[$1].sourceByteCount }
      report.outputByteCount += mine.reduce(0) { $0 + plan.tensors[$1].info.byteCount }
      if whole {
        if let recorded = completed[name], recorded.ranges == nil, FileSystem.exists(path),
          (try? FileSystem.byteCount(of: path)) == layout.fileByteCount, (try? FileDigest.sha256(of: path)) == recorded.sha256
        {
          try session.record(recorded)
          report.filesResumed.append(path)
          progress(layout.fileByteCount)
          continue
        }
        let writer = try GGUFFileWriter(path: path, layout: layout)
        do {
          progress(layout.dataOffset)
          try write(tensors: mine, progress: progress) { index, bytes, offset in try writer.write(tensor: index, bytes, at: offset) }
          try checkpoint.checkInputsUnchanged()
          try writer.commit()
        } catch {
          writer.abandon()
          throw error
        }
        try session.record(PartOutput(
          path: name, byteCount: layout.fileByteCount, sha256: try FileDigest.sha256(of: path), stamp: FileStamp(of: path)))
        report.filesWritten.append(path)
        continue
      }
      let ranges = ConversionRunner.merged(mine.map(plan.slot(ofTensor:)))
      let temporary = SharedOutputFile.temporaryPath(for: path)
      if let recorded = completed[name], recorded.ranges == ranges, FileSystem.exists(temporary),
        (try? FileSystem.byteCount(of: temporary)) == layout.fileByteCount,
        (try? FileDigest.sha256(of: temporary, byteCount: layout.fileByteCount, ranges: ranges)) == recorded.sha256
      {
        try session.record(recorded)
        report.filesResumed.append(path)
        progress(mine.reduce(0) { $0 + plan.tensors[$1].info.byteCount })
        continue
      }
      let shared = try SharedOutputFile(path: path, byteCount: layout.fileByteCount)
      do {
        // Every part writes the header (the same bytes); finalize checks it against the plan.
        try shared.write(layout.headerBytes, at: 0)
        for index in mine {
          let tensor = plan.tensors[index]
          let slot = plan.slot(ofTensor: index)
          let padding = slot.upperBound - (slot.lowerBound + tensor.info.byteCount)
          if padding > 0 { try shared.write([UInt8](repeating: 0, count: padding), at: slot.upperBound - padding) }
        }
        try write(tensors: mine, progress: progress) { index, bytes, offset in
          let info = layout.tensors[index]
          guard offset >= 0, offset <= info.byteCount - bytes.count else {
            throw GGUFError(.writeOutOfRange(tensor: info.name, offset: offset, count: bytes.count, byteCount: info.byteCount))
          }
          try shared.write(bytes, at: layout.fileOffset(ofTensor: index) + offset)
        }
        try checkpoint.checkInputsUnchanged()
        try shared.finish()
      } catch {
        shared.close()
        throw error
      }
      let digest = try FileDigest.sha256(of: temporary, byteCount: layout.fileByteCount, ranges: ranges)
      try session.record(PartOutput(path: name, byteCount: layout.fileByteCount, sha256: digest, ranges: ranges))
      report.filesWritten.append(path)
    }
    try session.finish()
    let elapsed = (clock.now - start).components
    report.seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    return report
  }

  /// The peak resident set of a part (or a run) on `workers` threads, from the plan alone (a job script's
  /// `--mem`): the plan's own tables and headers, the importance vectors, and per worker one piece in
  /// flight — its F32 values, an MLA head's decoded rows, the encoded blocks and the decoder's scratch
  /// (16 bytes per element of the largest piece).
  public func peakResidentBytes(workers: Int) -> Int {
    let tables = plan.tensors.count * 2048 + checkpoint.entries.count * 1024 + plan.layouts.reduce(0) { $0 + $1.dataOffset }
    let importance = plan.tensors.reduce(0) { $0 + 4 * ($1.importance?.reduce(0) { $0 + $1.count } ?? 0) }
    let largestPiece = plan.tensors.indices.reduce(0) { largest, index in
      max(largest, pieces(ofTensor: index).reduce(0) { max($0, $1.elementCount) })
    }
    return ResourcePlan.programBytes + tables + importance + max(1, workers) * 16 * largestPiece
  }
}
