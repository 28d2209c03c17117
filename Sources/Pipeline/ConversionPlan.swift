import Checkpoint
import JSON
import Quantization
import SafeTensors
import TensorCore

/// Why a conversion cannot be planned or run.
public enum ConversionError: Error, Sendable, CustomStringConvertible {
  /// A quantized weight lacks one of its tensors (e.g. an FP8 weight without `weight_scale_inv`).
  case missingCompanion(weight: String, role: String)
  /// A companion tensor has the wrong shape or dtype.
  case badCompanion(tensor: String, expected: String, actual: String)
  /// The weight's layout cannot be converted to the target (e.g. a 3-D tensor to FP8 blocks).
  case unsupported(tensor: String, reason: String)
  /// A value that cannot be converted faithfully (NaN/Inf), or a codec failure.
  case numeric(tensor: String, reason: String)

  public var description: String {
    switch self {
    case .missingCompanion(let weight, let role):
      return "weight '\(weight)' has no '\(role)' tensor; a quantized weight without its scale cannot be converted (is a shard missing?)"
    case .badCompanion(let tensor, let expected, let actual):
      return "tensor '\(tensor)' should be \(expected) but is \(actual)"
    case .unsupported(let tensor, let reason):
      return "cannot convert '\(tensor)': \(reason)"
    case .numeric(let tensor, let reason):
      return "tensor '\(tensor)': \(reason)"
    }
  }
}

/// One unit of work: a source weight group and what becomes of it.
public struct ConversionJob: Sendable {
  /// What happens to the group.
  public enum Action: Sendable {
    /// Bytes copied unchanged (file to file).
    case copy
    /// Dequantize or cast to a plain dtype.
    case cast(DType)
    /// Quantize to scaled FP8.
    case fp8(FP8Scheme, FP8ScaleRule)
  }

  /// The source group.
  public var group: WeightGroup
  public var action: Action
  /// The output tensors, in the order the job produces them (for `.copy`, the same names as the source).
  public var outputs: [PlannedTensor]
  /// Source tensor bytes the job reads.
  public var sourceByteCount: Int
  /// The logical `[rows, columns]` of the weight (`[1, n]` for 1-D and scalar tensors).
  public var rows: Int
  public var columns: Int

  /// Output bytes.
  public var outputByteCount: Int { outputs.reduce(0) { $0 + (ByteCount.of($1.dtype, shape: $1.shape) ?? 0) } }
}

/// The complete, deterministic plan of a conversion: jobs, output files, rewritten config.
public struct ConversionPlan: Sendable {
  public var target: ConversionTarget
  public var jobs: [ConversionJob]
  /// Output files in order: name and the job indices it holds.
  public var files: [(name: String, jobs: [Int])]
  /// The output `config.json`, if the input had one.
  public var config: JSONObject?

  public var sourceByteCount: Int { jobs.reduce(0) { $0 + $1.sourceByteCount } }
  public var outputByteCount: Int { jobs.reduce(0) { $0 + $1.outputByteCount } }
  /// Jobs that change bytes.
  public var convertedJobCount: Int { jobs.filter { if case .copy = $0.action { return false } else { return true } }.count }

  /// Plans converting `checkpoint` to `target`.
  ///
  /// - Throws: `ConversionError` when a quantized weight lacks its companion, or a selected weight
  ///   cannot take the target layout.
  public init(
    checkpoint: Checkpoint, target: ConversionTarget, selection: TensorSelection = TensorSelection(),
    maxShardByteCount: Int = OutputSharding.defaultMaxShardByteCount, compressedTensorsNaming: Bool = false
  ) throws {
    self.target = target
    let entries = checkpoint.entries
    let byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    var jobs: [ConversionJob] = []
    for group in WeightGrouping.groups(of: entries) {
      jobs.append(try ConversionPlan.job(for: group, byName, target, selection, compressedTensorsNaming))
    }
    // Orphaned scales (a `weight_scale_inv` whose weight is missing) surface as plain tensors named
    // like a companion: refuse rather than silently carrying a scale with no weight.
    for job in jobs where job.group.storage == .plain {
      let name = job.group.parts["weight"]!
      if name.hasSuffix(".weight_scale_inv") {
        throw ConversionError.missingCompanion(weight: String(name.dropLast("_scale_inv".count)), role: "weight (F8_E4M3)")
      }
    }
    // In a block-FP8 checkpoint, an FP8 weight with no scale is a weight whose scale went missing (a lost
    // shard, a bad merge), not an unscaled cast: copying or casting it would silently produce garbage.
    let scaledFP8 = jobs.contains { $0.group.storage == .fp8Block } || checkpoint.config?.quantizationConfig?.quantMethod == "fp8"
    if scaledFP8 {
      for job in jobs where job.group.storage == .plain {
        guard let name = job.group.parts["weight"], name.hasSuffix(".weight"), let entry = byName[name],
          entry.dtype == .float8E4M3FN || entry.dtype == .float8E5M2
        else { continue }
        throw ConversionError.missingCompanion(weight: name, role: "weight_scale_inv")
      }
    }
    self.jobs = jobs
    let assignment = OutputSharding.assign(itemByteCounts: jobs.map(\.outputByteCount), maxByteCount: maxShardByteCount)
    let names = OutputSharding.fileNames(count: assignment.count)
    files = zip(names, assignment).map { ($0, $1) }
    config = checkpoint.config.map { ConfigRewriter.rewrite($0.raw, for: target, jobs: jobs, compressedTensorsNaming: compressedTensorsNaming) }
  }

  private static func job(
    for group: WeightGroup, _ byName: [String: TensorEntry], _ target: ConversionTarget, _ selection: TensorSelection,
    _ compressedTensors: Bool
  ) throws -> ConversionJob {
    let sourceEntries = group.tensorNames.compactMap { byName[$0] }
    let sourceBytes = sourceEntries.reduce(0) { $0 + $1.byteCount }
    func copyJob() -> ConversionJob {
      ConversionJob(
        group: group, action: .copy,
        outputs: sourceEntries.map { PlannedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
        sourceByteCount: sourceBytes, rows: 0, columns: 0)
    }
    let main: TensorEntry
    switch group.storage {
    case .plain:
      main = byName[group.parts["weight"]!]!
    case .fp8Block:
      main = byName[group.parts["weight"]!]!
      guard let scale = byName[group.parts["weight_scale_inv"] ?? ""] else {
        throw ConversionError.missingCompanion(weight: main.name, role: "weight_scale_inv")
      }
      guard main.shape.count == 2, scale.dtype == .float32, scale.shape.count == 2 else {
        throw ConversionError.badCompanion(tensor: scale.name, expected: "F32 [ceil(out/128), ceil(in/128)] next to a 2-D weight", actual: "\(scale.dtype) \(scale.shape)")
      }
    default:
      guard selection.selects(group.modulePath, shape: [], dtype: .float32, storage: group.storage, target: target) else {
        return copyJob()
      }
      throw ConversionError.unsupported(tensor: group.modulePath, reason: "reading \(group.storage.rawValue) weights in convert is not supported yet; exclude it with --exclude")
    }
    guard selection.selects(main.name, shape: main.shape, dtype: main.dtype, storage: group.storage, target: target) else {
      return copyJob()
    }
    let rows = main.shape.count >= 2 ? main.shape[0] : 1
    let columns = main.shape.count >= 2 ? main.shape.dropFirst().reduce(1, *) : (ByteCount.elementCount(main.shape) ?? 0)

    switch target {
    case .cast(let dtype), .unscaledFP8(let dtype):
      if group.storage == .plain && main.dtype == dtype { return copyJob() }
      guard main.dtype.isFloatingPoint, main.dtype != .complex64 else { return copyJob() }
      return ConversionJob(
        group: group, action: .cast(dtype), outputs: [PlannedTensor(name: main.name, dtype: dtype, shape: main.shape)],
        sourceByteCount: sourceBytes, rows: rows, columns: columns)
    case .fp8(let layout):
      guard main.shape.count == 2, rows > 0, columns > 0 else {
        throw ConversionError.unsupported(tensor: main.name, reason: "FP8 scaling needs a non-empty 2-D weight, this one is \(main.shape)")
      }
      let scheme: FP8Scheme
      switch layout.granularity {
      case .block(let r, let c): scheme = .block(rows: r, columns: c)
      case .channel: scheme = .channel
      case .tensor: scheme = .tensor
      }
      let ctNaming = compressedTensors || layout.scaleLeaf == "weight_scale"
      // compressed-tensors stores scales in the weight's (original) dtype; DeepSeek in F32.
      let sourcePlainDType = group.storage == .plain ? main.dtype : DType.bfloat16
      let scaleDType: DType = ctNaming && [.bfloat16, .float16].contains(sourcePlainDType) ? sourcePlainDType : .float32
      let rule = FP8ScaleRule(format: layout.ue8m0Scales ? .ue8m0 : .float, storageDType: scaleDType)
      let fp8Layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: scheme)
      let module = TensorName(main.name).modulePath
      let scaleName = module + "." + (ctNaming ? "weight_scale" : "weight_scale_inv")
      return ConversionJob(
        group: group, action: .fp8(scheme, rule),
        outputs: [
          PlannedTensor(name: main.name, dtype: .float8E4M3FN, shape: main.shape),
          PlannedTensor(name: scaleName, dtype: scaleDType, shape: fp8Layout.scaleShape),
        ],
        sourceByteCount: sourceBytes, rows: rows, columns: columns)
    }
  }
}
