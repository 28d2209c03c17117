import TensorCore

/// Why a shard plan could not be made or written.
public enum ShardingError: Error, Sendable, CustomStringConvertible {
  /// A `--device` argument that is not `NAME` or `NAME:CAPACITY`.
  case invalidDevice(text: String, reason: String)
  /// A byte size that cannot be read (`80GB`, `512GiB`, `1.5TB`, `1000000`).
  case invalidByteSize(text: String)
  /// Two devices with the same name.
  case duplicateDevice(name: String)
  /// No devices were given, or a device count below 1.
  case noDevices
  /// A `--place` argument that is not `GLOB=DEVICE[,DEVICE...]`.
  case invalidPlaceRule(text: String, reason: String)
  /// A `--place` rule names a device that was not declared.
  case unknownDevice(rule: String, device: String, known: [String])
  /// The `--expert-load` file cannot be used.
  case invalidExpertLoad(path: String, reason: String)
  /// `--redundant` without `--expert-load`: there is no way to know which experts are hot.
  case redundantWithoutLoad
  /// More replicas asked for than a layer's devices can hold (each device holds an expert at most once).
  case tooManyReplicas(layer: Int, requested: Int, deviceCount: Int, expertCount: Int)
  /// The routed expert count does not divide by the number of ranks (the `deepseek-mp` layout needs it).
  case expertsNotDivisible(layer: Int, expertCount: Int, deviceCount: Int)
  /// A tensor-parallel split of a dimension that does not divide by the device count.
  case splitNotDivisible(tensor: String, dim: Int, size: Int, deviceCount: Int)
  /// A tensor-parallel split that would cut a quantization block (FP8 128×128).
  case splitCutsBlock(tensor: String, scale: String, dim: Int, size: Int, block: Int, deviceCount: Int)
  /// A tensor-parallel split of a weight whose storage Smelt cannot slice.
  case splitUnsupported(tensor: String, reason: String)
  /// A tensor-parallel split that would put part of an attention head on one device and the rest on another.
  case splitCutsHead(tensor: String, size: Int, headSize: Int, deviceCount: Int)
  /// `deepseek-mp`: a module name with no entry in convert.py's renaming table.
  case unmappedDeepSeekName(tensor: String, key: String)
  /// Two source tensors would get the same output name (on the same device).
  case duplicateOutputName(name: String, device: String)
  /// The plan needs more bytes than some device's budget. `table` is the per-device report, `suggestions`
  /// the other strategies that fit (or why none does).
  case doesNotFit(table: String, suggestions: [String])
  /// `--finalize` found no plan in the output directory.
  case planMissing(path: String)
  /// The plan stored in the output directory is unreadable or belongs to other inputs or options.
  case planMismatch(path: String, reason: String)
  /// `--finalize`: a planned output file is missing (its part has not run or not finished).
  case outputMissing(path: String, part: Int, partCount: Int)
  /// `--finalize`: a part has not recorded that it finished.
  case partUnfinished(directory: String, part: Int, partCount: Int)
  /// `--finalize`: the parts' receipts disagree on the part count or the plan.
  case partsInconsistent(directory: String, reason: String)
  /// `--finalize`: an output file has the wrong size or header.
  case outputDamaged(path: String, reason: String)
  /// The output directory holds files of something else, and `--force` was not given.
  case outputNotEmpty(directory: String, example: String)
  /// `--finalize`: a file's bytes differ from those its part recorded (changed after the part wrote it).
  case outputChanged(path: String, part: Int, partCount: Int, recorded: String, actual: String)
  /// An I/O or format failure, with its cause.
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .invalidDevice(let text, let reason):
      return "invalid --device '\(text)': \(reason) (expected NAME or NAME:CAPACITY, e.g. gpu0:80GB or cpu:512GiB)"
    case .invalidByteSize(let text):
      return "invalid byte size '\(text)': expected a number with an optional unit B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
    case .duplicateDevice(let name):
      return "device '\(name)' is declared twice"
    case .noDevices:
      return "no devices: pass --devices N or one --device NAME:CAPACITY per device"
    case .invalidPlaceRule(let text, let reason):
      return "invalid --place '\(text)': \(reason) (expected GLOB=DEVICE or GLOB=DEVICE,DEVICE)"
    case .unknownDevice(let rule, let device, let known):
      return "--place '\(rule)' names device '\(device)', which is not declared (devices: \(known.joined(separator: ", ")))"
    case .invalidExpertLoad(let path, let reason):
      return "--expert-load \(path): \(reason)"
    case .redundantWithoutLoad:
      return "--redundant needs --expert-load: replicas go to the hottest experts, which only the load file tells"
    case .tooManyReplicas(let layer, let requested, let deviceCount, let expertCount):
      return "layer \(layer): \(requested) redundant replica(s) do not fit: \(expertCount) experts on \(deviceCount) device(s) allow at most \(expertCount * (deviceCount - 1)) (a device holds each expert at most once)"
    case .expertsNotDivisible(let layer, let expertCount, let deviceCount):
      return "layer \(layer) has \(expertCount) routed experts, which do not divide by \(deviceCount) ranks (the deepseek-mp layout gives each rank the same number)"
    case .splitNotDivisible(let tensor, let dim, let size, let deviceCount):
      return "cannot split '\(tensor)' along dim \(dim): size \(size) does not divide by \(deviceCount) devices"
    case .splitCutsBlock(let tensor, let scale, let dim, let size, let block, let deviceCount):
      return "cannot split '\(tensor)' along dim \(dim) over \(deviceCount) devices: \(size)/\(deviceCount) = \(size / max(deviceCount, 1)) rows per device is not a multiple of the \(block)-element quantization block, so '\(scale)' would be cut mid-block; use fewer devices, a device count whose share is a multiple of \(block), or replicate this module"
    case .splitCutsHead(let tensor, let size, let headSize, let deviceCount):
      return "cannot split '\(tensor)' across \(deviceCount) devices: \(size / deviceCount) rows per device is not a whole number of \(headSize)-row attention heads; pick a device count that divides the head count"
    case .splitUnsupported(let tensor, let reason):
      return "cannot split '\(tensor)' for tensor parallelism: \(reason)"
    case .unmappedDeepSeekName(let tensor, let key):
      return "deepseek-mp layout: '\(tensor)' has module '\(key)', which DeepSeek's convert.py renaming table does not know (it only maps DeepSeek-V3 module names)"
    case .duplicateOutputName(let name, let device):
      return "two tensors would both be written as '\(name)' on device '\(device)'"
    case .doesNotFit(let table, let suggestions):
      return (["the plan does not fit the devices' budgets (capacity less --reserve); nothing was written", table] + suggestions)
        .joined(separator: "\n")
    case .planMissing(let path):
      return "no shard plan at '\(path)': run the parts (smelt shard IN OUT ... --part I/N) before --finalize"
    case .planMismatch(let path, let reason):
      return "\(path): \(reason)"
    case .outputMissing(let path, let part, let partCount):
      return "'\(path)' is missing: part \(part)/\(partCount) has not finished; rerun it with --part \(part)/\(partCount)"
    case .partUnfinished(let directory, let part, let partCount):
      return "\(directory): part \(part)/\(partCount) has not finished (no receipt); run it with --part \(part)/\(partCount), then --finalize again"
    case .partsInconsistent(let directory, let reason):
      return "\(directory): \(reason); use a fresh output directory and rerun all parts with the same options"
    case .outputDamaged(let path, let reason):
      return "'\(path)' is damaged: \(reason); delete it and rerun its part"
    case .outputNotEmpty(let directory, let example):
      return "output directory '\(directory)' is not empty (it contains '\(example)'); pass --force to replace its contents, or choose an empty directory"
    case .outputChanged(let path, let part, let partCount, let recorded, let actual):
      return "'\(path)' changed after part \(part)/\(partCount) wrote it (SHA-256 \(actual), the part recorded \(recorded)); rerun part \(part)/\(partCount), then --finalize again"
    case .io(let path, let reason):
      return "\(path): \(reason)"
    }
  }
}
