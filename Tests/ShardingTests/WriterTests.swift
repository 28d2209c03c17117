import Checkpoint
import JSON
import SafeTensors
import Sharding
import SystemIO
import TensorCore
import Testing

/// Source bytes of the part of `source` that `slice` selects (row-major), or all of them.
func expectedBytes(_ source: TensorView, _ slice: TensorSlice?) -> [UInt8] {
  let all = source.copyBytes()
  guard let slice else { return all }
  let elementBytes = source.dtype.byteWidth ?? 1
  let outer = source.shape[..<slice.dim].reduce(1, *)
  let inner = source.shape[(slice.dim + 1)...].reduce(1, *) * elementBytes
  let row = source.shape[slice.dim] * inner
  var out: [UInt8] = []
  for o in 0..<outer {
    let start = o * row + slice.start * inner
    out += all[start..<(start + slice.count * inner)]
  }
  return out
}

/// Every output tensor of every device holds exactly the planned source bytes; each device re-opens.
func checkContents(_ plan: ShardPlan, _ out: String) throws {
  let source = try Checkpoint.open(plan.source.directory)
  for device in plan.devices {
    let checkpoint: Checkpoint
    if device.directory.isEmpty {
      checkpoint = try Checkpoint.open(FileSystem.join(out, plan.files[device.fileIndices[0]].relativePath))
    } else {
      checkpoint = try Checkpoint.open(FileSystem.join(out, device.directory))
      #expect(checkpoint.config != nil)
      #expect(checkpoint.warnings.isEmpty)
    }
    #expect(checkpoint.tensorNames.count == device.tensors.count)
    for tensor in device.tensors {
      let written = try checkpoint.tensor(tensor.name)
      let original = try source.tensor(plan.source.tensors[tensor.sourceIndex].name)
      #expect(written.shape == tensor.shape)
      #expect(written.dtype == original.dtype)
      #expect(written.copyBytes() == expectedBytes(original, tensor.slice), "\(tensor.name) on \(device.device.name)")
    }
  }
}

/// Checks every file hash in the manifest against the file.
func checkManifestHashes(_ manifestPath: String, _ out: String) throws -> JSONValue {
  let manifest = try JSONParser.parse(try FileSystem.readFile(manifestPath))
  var records = (manifest["other_files"]?.arrayValue ?? [])
  for device in manifest["devices"]?.arrayValue ?? [] { records += device["files"]?.arrayValue ?? [] }
  #expect(!records.isEmpty)
  for file in records {
    let bytes = try FileSystem.readFile(FileSystem.join(out, file["path"]?.stringValue ?? ""))
    #expect(bytes.count == file["bytes"]?.intValue)
    #expect(SHA256.hex(of: bytes) == file["sha256"]?.stringValue)
  }
  return manifest
}

@Suite("shard writer")
struct WriterTests {
  @Test("a checkpoint shards into 2, 4 and 16 devices; each device re-opens with the source bytes and sidecars")
  func shardsIntoDevices() throws {
    let input = try Fixtures.temporaryDirectory("in")
    defer { try? FileSystem.removeTree(input) }
    try TinyCheckpoint.write(to: input, experts: 16, small: true)
    for count in [2, 4, 16] {
      let out = try Fixtures.temporaryDirectory("n\(count)")
      defer { try? FileSystem.removeTree(out) }
      let plan = try Fixtures.plan(input, ShardOptions(devices: try ShardDevice.homogeneous(count: count)))
      let result = try #require(try ShardJob.run(plan, sourcePath: input, outputDirectory: out))
      try checkContents(plan, out)
      for device in plan.devices {
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json"] {
          #expect(FileSystem.exists(FileSystem.join(out, device.directory, name)))
        }
      }
      let manifest = try checkManifestHashes(result.manifestPath, out)
      #expect(manifest["devices"]?.arrayValue?.count == count)
      #expect(manifest["tensors"]?.arrayValue?.count == plan.devices.reduce(0) { $0 + $1.tensors.count })
      #expect(manifest["moe_layers"]?.arrayValue?.count == 3)
    }
  }

  @Test("the FP8 sample splits into a GPU (attention, dense, shared) and a CPU (routed experts)")
  func gpuPlusCPU() throws {
    let out = try Fixtures.temporaryDirectory("gpucpu")
    defer { try? FileSystem.removeTree(out) }
    let options = ShardOptions(
      devices: [try ShardDevice(parsing: "gpu0:4MB"), try ShardDevice(parsing: "cpu:64GiB")],
      rules: [try PlacementRule(parsing: "*.experts.*=cpu")])
    let plan = try Fixtures.plan(Fixtures.fp8Sample, options)
    #expect(plan.fits)
    let result = try #require(try ShardJob.run(plan, sourcePath: Fixtures.fp8Sample, outputDirectory: out))
    try checkContents(plan, out)
    #expect(plan.devices[0].expertByteCount == 0)
    #expect(plan.devices[1].tensors.allSatisfy { TensorName($0.name).isRoutedExpert })
    #expect(plan.devices[0].tensorByteCount + plan.devices[1].tensorByteCount == plan.source.tensorByteCount)
    let manifest = try checkManifestHashes(result.manifestPath, out)
    let layer = try #require(manifest["moe_layers"]?[0])
    #expect(layer["device_to_experts"]?["cpu"]?.arrayValue?.count == 16)
    #expect(layer["expert_to_devices"]?["5"]?[0]?["device"]?.stringValue == "cpu")
    #expect(layer["expert_to_devices"]?["5"]?[0]?["local_index"]?.intValue == 5)
  }

  @Test("a run in 3 parts plus --finalize equals a single run byte for byte")
  func partsEqualSingleRun() throws {
    let input = try Fixtures.temporaryDirectory("in")
    let single = try Fixtures.temporaryDirectory("single")
    let parted = try Fixtures.temporaryDirectory("parted")
    defer { for path in [input, single, parted] { try? FileSystem.removeTree(path) } }
    try TinyCheckpoint.write(to: input, small: true)
    let options = ShardOptions(devices: try ShardDevice.homogeneous(count: 2), maxFileByteCount: 4_000)
    let plan = try Fixtures.plan(input, options)
    #expect(plan.files.count >= 6)
    try ShardJob.run(plan, sourcePath: input, outputDirectory: single)
    for part in [2, 0, 1] {
      #expect(try ShardJob.run(plan, sourcePath: input, outputDirectory: parted, part: part, of: 3) == nil)
    }
    #expect(!FileSystem.exists(FileSystem.join(parted, ShardManifest.fileName)))
    _ = try ShardJob.finalize(outputDirectory: parted)
    // The same files (hidden ones included: the plan file; the part receipts are gone), byte for byte.
    func listing(_ root: String) throws -> [String] {
      var result: [String] = []
      for name in try FileSystem.contents(of: root).sorted() {
        if FileSystem.isDirectory(FileSystem.join(root, name)) {
          result += try FileSystem.contents(of: FileSystem.join(root, name)).sorted().map { name + "/" + $0 }
        } else {
          result.append(name)
        }
      }
      return result
    }
    let compared = try listing(single)
    #expect(compared == (try listing(parted)))
    #expect(compared.contains(".smelt-shard-plan.json") && compared.contains("manifest.json"))
    for file in compared {
      #expect(try FileSystem.readFile(FileSystem.join(single, file)) == FileSystem.readFile(FileSystem.join(parted, file)), "\(file)")
    }
    // Parts are disjoint and cover every file.
    let assignment = plan.partAssignment(partCount: 3)
    #expect(Set(assignment) == [0, 1, 2])
  }

  @Test("finalize names the missing part and refuses a damaged file")
  func finalizeChecksParts() throws {
    let input = try Fixtures.temporaryDirectory("in")
    let out = try Fixtures.temporaryDirectory("missing")
    defer { for path in [input, out] { try? FileSystem.removeTree(path) } }
    try TinyCheckpoint.write(to: input, small: true)
    let options = ShardOptions(devices: try ShardDevice.homogeneous(count: 2), maxFileByteCount: 4_000)
    let plan = try Fixtures.plan(input, options)
    try ShardJob.run(plan, sourcePath: input, outputDirectory: out, part: 0, of: 2)
    #expect {
      _ = try ShardJob.finalize(outputDirectory: out)
    } throws: { error in
      guard case ShardingError.partUnfinished(_, let part, let count) = error else { return false }
      return part == 2 && count == 2
    }
    try ShardJob.run(plan, sourcePath: input, outputDirectory: out, part: 1, of: 2)
    let path = FileSystem.join(out, plan.files[0].relativePath)
    var bytes = try FileSystem.readFile(path)
    bytes[bytes.count - 1] ^= 0x01
    try FileSystem.writeFileAtomically(Array(bytes.dropLast()), to: path)
    #expect {
      _ = try ShardJob.finalize(outputDirectory: out)
    } throws: { error in
      guard case ShardingError.outputDamaged = error else { return false }
      return true
    }
    // Parts of a different plan in the same directory are refused.
    let other = ShardOptions(devices: try ShardDevice.homogeneous(count: 3))
    #expect(throws: ShardingError.self) {
      try ShardJob.run(try Fixtures.plan(input, other), sourcePath: input, outputDirectory: out, part: 0, of: 2)
    }
  }

  @Test("budgets are enforced before anything is written, with a per-device table")
  func budgetRefused() throws {
    let out = "/tmp/smelt-shard-tests-never-\(getpid())"
    let options = ShardOptions(devices: [try ShardDevice(parsing: "gpu0:1MB"), try ShardDevice(parsing: "gpu1:1MB")])
    let plan = try Fixtures.plan(Fixtures.fp8Sample, options)
    #expect(!plan.fits)
    #expect {
      try ShardJob.run(plan, sourcePath: Fixtures.fp8Sample, outputDirectory: out)
    } throws: { error in
      let text = "\(error)"
      return text.contains("gpu0") && text.contains("gpu1") && text.contains("1.0 MB") && text.contains("NO, over by")
    }
    #expect(!FileSystem.exists(out))
  }
}

#if canImport(Glibc)
  import Glibc
#endif
