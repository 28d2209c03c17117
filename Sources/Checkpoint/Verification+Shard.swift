import SafeTensors
import SystemIO
import TensorCore

/// The checks of a `smelt shard` output that go beyond file hashes: nothing at the top level but the
/// manifest, its listed files and the device directories; every tensor where the manifest says it is (and
/// nothing else in the files); expert maps that agree with each other and with the tensors' placement.
extension Verification {
  /// Top-level entries that are not the manifest, a device directory or (when the top level is not itself
  /// a device directory, whose files the device loop checks) a listed file. Hidden files are smelt's own.
  static func checkTopLevel(directory: String, manifest: ShardManifest, checksFiles: Bool) -> [VerificationFinding] {
    let devices = Set(manifest.deviceDirectories.filter { !$0.isEmpty })
    let listed = Set(manifest.files.map(\.name))
    var findings: [VerificationFinding] = []
    for name in (try? FileSystem.contents(of: directory)) ?? [] where !name.hasPrefix(".") {
      let path = FileSystem.join(directory, name)
      if FileSystem.isDirectory(path) {
        guard !devices.contains(name) else { continue }
        findings.append(VerificationFinding(
          .unlistedFile, file: name,
          "directory '\(name)' is not a device directory of \(ShardManifest.fileName) (added after the run, or left by an earlier one?)"))
      } else if checksFiles && name != ShardManifest.fileName && !listed.contains(name) {
        findings.append(VerificationFinding(
          .unlistedFile, file: name, "'\(name)' is not listed in \(ShardManifest.fileName) (added after the run?)"))
      }
    }
    for device in devices.sorted() where !FileSystem.isDirectory(FileSystem.join(directory, device)) {
      findings.append(VerificationFinding(
        .fileMissing, file: device, "device directory '\(device)' named by \(ShardManifest.fileName) is missing"))
    }
    return findings
  }

  /// The manifest's `tensors` entries of device directory `device` against the headers of its files
  /// (`headers`, by file name inside the directory): each listed tensor is in its file with its dtype and
  /// shape and belongs to the device owning the directory; each tensor in the files is listed.
  static func checkPlacement(_ manifest: ShardManifest, device: String, headers: [String: SafeTensorsHeader])
    -> [VerificationFinding]
  {
    guard let tensors = manifest.tensors, !tensors.isEmpty else { return [] }
    let owners = Dictionary(manifest.devices.map { ($0.directory, $0.name) }, uniquingKeysWith: { first, _ in first })
    let prefix = device.isEmpty ? "" : device + "/"
    var problems: [(file: String, tensor: String, message: String)] = []
    var listed: [String: Set<String>] = [:]
    for tensor in tensors {
      let (directory, fileName) = tensor.file.contains("/") ? FileSystem.split(tensor.file) : ("", tensor.file)
      guard directory == device else { continue }
      listed[fileName, default: []].insert(tensor.name)
      if let owner = manifest.fileOwners[tensor.file] ?? owners[device], owner != tensor.device {
        problems.append((tensor.file, tensor.name, "\(ShardManifest.fileName) places '\(tensor.name)' on device '\(tensor.device)', but its file '\(tensor.file)' belongs to device '\(owner)'"))
      }
      guard let header = headers[fileName] else { continue }  // missing or unreadable: reported already
      guard let entry = header.entry(named: tensor.name) else {
        problems.append((tensor.file, tensor.name, "\(ShardManifest.fileName) places '\(tensor.name)' in '\(tensor.file)', which does not contain it"))
        continue
      }
      if entry.dtype.rawValue != tensor.dtype || entry.shape != tensor.shape {
        problems.append((tensor.file, tensor.name, "\(ShardManifest.fileName) says '\(tensor.name)' in '\(tensor.file)' is \(tensor.dtype) \(tensor.shape), the file has \(entry.dtype.rawValue) \(entry.shape)"))
      }
    }
    for (fileName, header) in headers.sorted(by: { $0.key < $1.key }) {
      let names = listed[fileName] ?? []
      for entry in header.tensors where !names.contains(entry.name) {
        problems.append((prefix + fileName, entry.name, "'\(prefix + fileName)' holds tensor '\(entry.name)', which \(ShardManifest.fileName) does not place there"))
      }
    }
    var findings = problems.prefix(20).map { VerificationFinding(.placementMismatch, file: $0.file, tensor: $0.tensor, $0.message) }
    if problems.count > 20 {
      findings.append(VerificationFinding(.placementMismatch, file: prefix.isEmpty ? nil : device, "… and \(problems.count - 20) more placement problem(s) in '\(device.isEmpty ? "." : device)'"))
    }
    return findings
  }

  /// `expert_to_devices` and `device_to_experts` of every MoE layer: both name declared devices, say the
  /// same thing, and match where the manifest places each expert's tensors (by their source names,
  /// `…layers.L.mlp.experts.E.…`).
  static func checkExpertMaps(_ manifest: ShardManifest) -> [VerificationFinding] {
    let declared = Set(manifest.devices.map(\.name))
    var placed: [Int: [Int: Set<String>]] = [:]
    for tensor in manifest.tensors ?? [] {
      if let (layer, expert) = expertIndex(in: tensor.sourceName) { placed[layer, default: [:]][expert, default: []].insert(tensor.device) }
    }
    var problems: [String] = []
    for map in manifest.expertMaps {
      var backward: [Int: Set<String>] = [:]
      for (device, experts) in map.deviceToExperts {
        if !declared.contains(device) { problems.append("layer \(map.layer): device_to_experts names device '\(device)', which is not declared") }
        for expert in experts { backward[expert, default: []].insert(device) }
      }
      for (expert, devices) in map.expertToDevices.sorted(by: { $0.key < $1.key }) {
        let forward = Set(devices)
        for device in forward.subtracting(declared).sorted() {
          problems.append("layer \(map.layer): expert \(expert) is mapped to device '\(device)', which is not declared")
        }
        if forward != backward[expert] ?? [] {
          problems.append("layer \(map.layer): expert \(expert) is on \(forward.sorted()) by expert_to_devices but on \((backward[expert] ?? []).sorted()) by device_to_experts")
        }
        if let actual = placed[map.layer]?[expert], actual != forward {
          problems.append("layer \(map.layer): expert \(expert) is mapped to \(forward.sorted()), but its tensors are placed on \(actual.sorted())")
        }
      }
      for expert in backward.keys.sorted() where map.expertToDevices[expert] == nil {
        problems.append("layer \(map.layer): device_to_experts lists expert \(expert), which expert_to_devices does not map")
      }
    }
    var findings = problems.prefix(20).map { VerificationFinding(.placementMismatch, file: ShardManifest.fileName, "\(ShardManifest.fileName): \($0)") }
    if problems.count > 20 {
      findings.append(VerificationFinding(.placementMismatch, file: ShardManifest.fileName, "… and \(problems.count - 20) more expert-map problem(s)"))
    }
    return findings
  }

  /// `(L, E)` of a routed expert's tensor name `…layers.L.mlp.experts.E.…`, else `nil`.
  static func expertIndex(in name: String) -> (layer: Int, expert: Int)? {
    let parts = name.split(separator: ".")
    guard let layerAt = parts.firstIndex(of: "layers"), layerAt + 1 < parts.count, let layer = Int(parts[layerAt + 1]),
      let expertsAt = parts[layerAt...].firstIndex(of: "experts"), expertsAt + 1 < parts.count,
      let expert = Int(parts[expertsAt + 1])
    else { return nil }
    return (layer, expert)
  }
}
