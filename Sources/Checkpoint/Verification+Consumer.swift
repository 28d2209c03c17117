import JSON
import SafeTensors
import SystemIO
import TensorCore
import WeightFormats

/// Consumer-true verification (issue 14): a checkpoint directory read the way transformers, vLLM,
/// compressed-tensors or mlx-lm read it — by `config.json` first. Every quantized weight must be one the
/// config declares (otherwise its consumer loads the raw codes as values, as an unscaled cast of block-FP8
/// codes did), every scale tensor must belong to a weight, and every quantization method the config
/// declares must have tensors. Only headers and the config are read.
extension Verification {
  /// How a config declares each quantized storage (`WeightFormat.declaringQuantMethods`).
  static let declaringMethods: [WeightStorage: Set<String>] = Dictionary(
    WeightFormats.all.filter { !$0.declaringQuantMethods.isEmpty }.map { ($0.storage, $0.declaringQuantMethods) },
    uniquingKeysWith: { first, _ in first })

  /// compressed-tensors `config_groups.*.format` → the storage it selects (`WeightFormat.compressedTensorsFormat`).
  static let compressedTensorsFormats: [String: WeightStorage] = Dictionary(
    WeightFormats.all.compactMap { format in format.compressedTensorsFormat.map { ($0, format.storage) } },
    uniquingKeysWith: { first, _ in first })

  /// The quantization method `directory`'s config declares (`nil`: none), or `nil` overall when the directory
  /// has no `config.json` (no consumer-level check is possible).
  static func declaredMethod(directory: String) -> (config: JSONObject, method: String?)? {
    let path = FileSystem.join(directory, "config.json")
    guard FileSystem.kind(of: path) == .file, let bytes = try? FileSystem.readFile(path),
      let value = try? bytes.withUnsafeBytes({ try JSONParser.parse($0) }), var config = value.objectValue
    else { return nil }
    if let text = config["text_config"]?.objectValue, config["quantization_config"] == nil, config["quantization"] == nil {
      config = text
    }
    if let quantization = config["quantization_config"]?.objectValue {
      if let method = quantization["quant_method"]?.stringValue { return (config, method) }
      if quantization["bits"] != nil || quantization["group_size"] != nil { return (config, "mlx") }
    }
    if config["quantization"]?.objectValue != nil { return (config, "mlx") }
    if FileSystem.kind(of: FileSystem.join(directory, "hf_quant_config.json")) == .file { return (config, "modelopt") }
    return (config, nil)
  }

  /// The consumer-level findings for the checkpoint in `directory` whose headers are `headers` (file name →
  /// header); none when it has no `config.json`. `prefix` goes before file names (a device directory).
  public static func consumerFindings(directory: String, headers: [String: SafeTensorsHeader], prefix: String = "")
    -> [VerificationFinding]
  {
    guard let (config, method) = declaredMethod(directory: directory) else { return [] }
    var fileOf: [String: String] = [:]
    var entries: [TensorEntry] = []
    for (file, header) in headers.sorted(by: { $0.key < $1.key }) {
      for entry in header.tensors where fileOf[entry.name] == nil {
        fileOf[entry.name] = file
        entries.append(entry)
      }
    }
    let names = Set(entries.map(\.name))
    var findings: [VerificationFinding] = []
    var reported = 0
    func report(_ code: VerificationFinding.Code, tensor: String?, _ message: String) {
      reported += 1
      guard reported <= 20 else { return }
      findings.append(VerificationFinding(code, file: tensor.flatMap { fileOf[$0] }.map { prefix + $0 }, tensor: tensor, message))
    }
    var storedCount: [WeightStorage: Int] = [:]
    let methodText = method.map { "quant_method '\($0)'" } ?? "no quantization_config"
    for group in WeightGrouping.groups(of: entries) {
      if group.storage == .plain {
        guard let name = group.parts.values.first else { continue }
        if ValueScan.isScale(name, among: names) {
          report(
            .unexplainedTensor, tensor: name,
            "'\(name)' in '\(prefix + (fileOf[name] ?? "?"))' is a scale tensor, but no weight uses it (config.json: \(methodText)): its consumer reports it as an unexpected key and loads the weight unscaled")
        } else if method == "fp8", name.hasSuffix("_proj.weight"), let entry = entries.first(where: { $0.name == name }),
          entry.dtype == .float8E4M3FN, !excluded(name, config)
        {
          report(
            .unexplainedTensor, tensor: name,
            "'\(name)' in '\(prefix + (fileOf[name] ?? "?"))' is F8_E4M3 without the weight_scale_inv that quant_method 'fp8' expects")
        }
        continue
      }
      storedCount[group.storage, default: 0] += 1
      let allowed = declaringMethods[group.storage] ?? []
      if let method, allowed.contains(method) { continue }
      let main = group.parts[group.format.mainRole] ?? group.tensorNames.first ?? group.modulePath
      let companions = group.tensorNames.filter { $0 != main }.map { "'\($0)'" }.joined(separator: ", ")
      report(
        .unexplainedTensor, tensor: main,
        "'\(main)' in '\(prefix + (fileOf[main] ?? "?"))' is stored as \(group.storage.rawValue)\(companions.isEmpty ? "" : " (with \(companions))"), but config.json has \(methodText): its consumer would read the codes as values; write the quantization_config that describes it (or convert to a plain target)")
    }
    if let method {
      let declared = declaringMethods.filter { $0.value.contains(method) }.map(\.key)
      if !declared.isEmpty, !declared.contains(where: { (storedCount[$0] ?? 0) > 0 }) {
        report(
          .configWithoutTensors, tensor: nil,
          "config.json declares quant_method '\(method)', but no tensor is stored that way: its consumer expects quantized weights (and their scales) it will not find")
      } else if method == "compressed-tensors" {
        let groups = config["quantization_config"]?["config_groups"]?.objectValue ?? JSONObject()
        for (key, group) in groups {
          guard let format = group["format"]?.stringValue ?? config["quantization_config"]?["format"]?.stringValue,
            let storage = compressedTensorsFormats[format], (storedCount[storage] ?? 0) == 0
          else { continue }
          report(
            .configWithoutTensors, tensor: nil,
            "config.json quantization_config.config_groups.\(key) (format '\(format)') selects no tensor: no weight is stored as \(storage.rawValue)")
        }
      }
    }
    if reported > 20 {
      findings.append(VerificationFinding(.unexplainedTensor, "… and \(reported - 20) more tensor(s) the config does not explain"))
    }
    for index in findings.indices where findings[index].file == nil && findings[index].code == .configWithoutTensors {
      findings[index].file = prefix + "config.json"
    }
    return findings
  }

  /// Whether `quant_method: fp8`'s `modules_to_not_convert` lists the module of `name`.
  static func excluded(_ name: String, _ config: JSONObject) -> Bool {
    let module = String(name.dropLast(".weight".count))
    let list = config["quantization_config"]?["modules_to_not_convert"]?.arrayValue?.compactMap(\.stringValue) ?? []
    return list.contains { module == $0 || module.hasSuffix("." + $0) || module.hasPrefix($0 + ".") }
  }
}

extension Verification {
  /// The light check `convert` and `shard` run on what they just wrote: the consumer-level findings of the
  /// directory (each device directory of a shard output), from headers and configs only — no hashing, no
  /// value scan.
  public static func consumerCheck(directory: String) -> [VerificationFinding] {
    var directories = [""]
    if let manifest = ShardManifest.read(directory: directory), !manifest.deviceDirectories.isEmpty {
      directories = Array(Set(manifest.deviceDirectories)).sorted()
    }
    var findings: [VerificationFinding] = []
    for device in directories {
      let path = device.isEmpty ? directory : FileSystem.join(directory, device)
      var headers: [String: SafeTensorsHeader] = [:]
      for name in (try? FileSystem.contents(of: path)) ?? [] where name.hasSuffix(".safetensors") && !name.hasPrefix(".") {
        if let file = try? SafeTensorsFile(path: FileSystem.join(path, name)) { headers[name] = file.header }
      }
      findings += consumerFindings(directory: path, headers: headers, prefix: device.isEmpty ? "" : device + "/")
    }
    return findings
  }
}
