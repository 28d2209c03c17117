// Issue 15 ("hostile inputs and faults, round 2"): one test per defect the adversarial run found. Each
// failed before the fix: a destroyed input, a hang, a false "OK", a signal death or a misleading message.
import Checkpoint
import Foundation
import JSON
import SafeTensors
import Sharding
import SystemIO
import TensorCore
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Runs the built `smelt` with `arguments` under bash (for `ulimit`, FIFOs, `timeout`), returning status
/// and stderr; a run that takes longer than `seconds` is killed (status 124).
private func spawnSmelt(_ arguments: String, prefix: String = "", seconds: Int = 60) throws -> (status: Int32, stderr: String) {
  let smelt = try #require(smeltExecutable, "build the smelt product first")
  return try shell("\(prefix) exec timeout -s KILL \(seconds) \(smelt) \(arguments)")
}

@Suite("hostile inputs, round 2") struct HostileRoundTwoTests {
  static let shardArguments = ["--devices", "2", "--max-shard-size", "10KB", "-q"]

  // MARK: item 2: inputs reached through links or bind mounts

  @Test("a symlinked input file whose real directory is OUT is refused before anything is written")
  func symlinkedInputIntoItsOwnDirectory() throws {
    let scratch = ScratchDirectory("link-input")
    defer { scratch.remove() }
    let real = scratch.join("m")
    try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: true)
    let model = real + "/model.safetensors"
    Fixture.write(try Fixture.safetensorsBytes(Fixture.tinyTensors()[0]), to: model)
    let before = Fixture.hashes(real)
    let links = scratch.join("lk")
    try FileManager.default.createDirectory(atPath: links, withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: links + "/model.safetensors", withDestinationPath: model)
    for extra in [["--force"], ["--resume"]] {
      let result = runSmelt(["convert", links + "/model.safetensors", real, "--to", "fp8-block"] + extra)
      #expect(result.status == 1, "\(extra): \(result.stderr)")
      #expect(result.stderr.contains("inside the output directory") || result.stderr.contains("inside it"), "\(result.stderr)")
      // A directory of symlinks to the real shards, and shard into the real directory.
      #expect(runSmelt(["convert", links, real, "--to", "bf16"] + extra).status == 1)
    }
    #expect(runSmelt(["shard", links, real, "--force"] + Self.shardArguments).status == 1)
    #expect(Fixture.hashes(real) == before, "the input is untouched")
    #expect(Fixture.names(real) == ["model.safetensors"], "nothing was written next to it")
  }

  @Test("an output that is a bind mount of the input directory is refused (when mounts can be made)")
  func bindMountedInput() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("bind-input")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let before = Fixture.hashes(input)
    let mountPoint = scratch.join("view")
    try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
    // A private mount namespace: the bind mount vanishes with the shell. Without the privilege, skip.
    let probe = try shell("unshare -m sh -c 'mount --bind \(input) \(mountPoint)' 2>/dev/null")
    guard probe.status == 0 else { return }
    for command in ["convert \(input) \(mountPoint) --to bf16 --force", "shard \(input) \(mountPoint) --devices 2 --force -q",
      "convert \(input) \(mountPoint)/sub --to bf16"]
    {
      let result = try shell("unshare -m sh -c 'mount --bind \(input) \(mountPoint) && exec \(smelt) \(command)'")
      #expect(result.status == 1, "\(command): \(result.stderr)")
    }
    #expect(Fixture.hashes(input) == before)
  }

  @Test("forward --output and validate --json-file never replace an input file, even through a link")
  func outputFileIsAnInput() throws {
    let scratch = ScratchDirectory("output-file-input")
    defer { scratch.remove() }
    let input = scratch.join("in")
    try FileManager.default.copyItem(atPath: samplePath("tiny-deepseek-v3"), toPath: input)
    let before = Fixture.hashes(input)
    let shard = input + "/model-00001-of-00002.safetensors"
    try FileManager.default.createSymbolicLink(atPath: scratch.join("alias.safetensors"), withDestinationPath: shard)
    for output in [shard, input + "/config.json", input + "/./model.safetensors.index.json"] {
      let result = runSmelt(["forward", input, "--tokens", "1,2", "--output", output])
      #expect(result.status == 1 && result.stderr.contains("would destroy the input"), "\(output): \(result.stderr)")
      let validated = runSmelt(["validate", input, input, "--level", "tensor", "--json-file", output])
      #expect(validated.status == 1 && validated.stderr.contains("would destroy the input"), "\(output): \(validated.stderr)")
    }
    // Writing over a link replaces the link, not its target: allowed.
    #expect(runSmelt(["forward", input, "--tokens", "1,2", "--output", scratch.join("alias.safetensors"), "-q"]).status == 0)
    #expect(Fixture.hashes(input) == before)
  }

  // MARK: item 3: --resume never mixes two plans or two versions of an input

  @Test("a run stopped after some files resumes only with its own options and unchanged inputs; --force starts over")
  func resumeRefusesOtherOptionsAndChangedInputs() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("resume-mismatch")
    defer { scratch.remove() }
    let input = try CrashSafetyTests.checkpointWithBigLastFile(scratch)
    let output = scratch.join("out")
    let options = CrashSafetyTests.convertArguments
    let arguments = ([input, output] + options).joined(separator: " ")
    // `ulimit -f 20` (KB) stops the run at its last, large file: the small files are complete and journaled.
    let stopped = try shell("ulimit -f 20; exec \(smelt) convert \(arguments)")
    try #require(stopped.status == 1 && Fixture.names(output).contains(".smelt-progress.json"), "\(stopped.stderr)")
    let before = Fixture.hashes(output)

    let otherScales = runSmelt(["convert", input, output, "--resume", "--scale-format", "ue8m0"] + options)
    #expect(otherScales.status == 1 && otherScales.stderr.contains("other options") && otherScales.stderr.contains("--force"), "\(otherScales.stderr)")
    let otherTarget = runSmelt(["convert", input, output, "--resume", "--to", "bf16", "-q"])
    #expect(otherTarget.status == 1 && otherTarget.stderr.contains("other options"), "\(otherTarget.stderr)")
    #expect(Fixture.hashes(output) == before, "a refused resume changed the output")

    // A weight rewritten in place (same size, same bytes elsewhere): its stamp changed.
    let shard = try #require(Fixture.names(input).first { $0.hasSuffix(".safetensors") })
    var bytes = Array(FileManager.default.contents(atPath: input + "/" + shard) ?? Data())
    bytes[bytes.count - 1] ^= 0x01
    Fixture.write(bytes, to: input + "/" + shard)
    let changed = runSmelt(["convert", input, output, "--resume"] + options)
    #expect(changed.status == 1 && changed.stderr.contains("changed since the interrupted run") && changed.stderr.contains(shard), "\(changed.stderr)")

    let forced = runSmelt(["convert", input, output, "--force"] + options)
    #expect(forced.status == 0, "\(forced.stderr)")
    #expect(runSmelt(["verify", output, "--deep"]).status == 0)
  }

  // MARK: item 5: MLX scales are signed

  @Test("verify --deep accepts the negative scales of an mlx-affine output and still rejects a zero one")
  func mlxNegativeScales() throws {
    let scratch = ScratchDirectory("mlx-verify")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("mlx")
    let converted = runSmelt(["convert", input, output, "--to", "mlx-affine", "--exclude", "*.down_proj.*", "-q"])
    try #require(converted.status == 0, "\(converted.stderr)")
    let checkpoint = try Checkpoint.open(output)
    let scales = try #require(checkpoint.tensorNames.first { $0.hasSuffix(".scales") })
    let view = try checkpoint.tensor(scales)
    let bits = try view.copyElements(as: UInt16.self)
    #expect(bits.contains { $0 & 0x8000 != 0 }, "the fixture has negative MLX scales")
    let result = runSmelt(["verify", output, "--deep"])
    #expect(result.status == 0, "\(result.stderr)")

    // A zero scale is still an error (MLX never writes one).
    let file = output + "/" + (try #require(checkpoint.location(of: scales))).fileName
    let range = view.owner.header.fileRange(of: view.entry)
    var bytes = Array(FileManager.default.contents(atPath: file) ?? Data())
    bytes[range.lowerBound] = 0
    bytes[range.lowerBound + 1] = 0
    Fixture.write(bytes, to: file)
    let broken = runSmelt(["verify", output, "--deep", "--json"])
    #expect(broken.status == 1)
    #expect(broken.stdout.contains("non-positive-scale") && broken.stdout.contains(scales), "\(broken.stdout)")
  }

  // MARK: item 7: FIFOs and other non-regular files

  @Test("a FIFO named config.json, index or shard fails every command at once instead of hanging")
  func fifoInputs() throws {
    let scratch = ScratchDirectory("fifo")
    defer { scratch.remove() }
    for victim in ["config.json", "model.safetensors.index.json", "model-00002-of-00002.safetensors"] {
      let input = scratch.join("in-\(victim.prefix(6))")
      try Fixture.writeCheckpoint(Fixture.tinyTensors(), to: input)
      try FileManager.default.removeItem(atPath: input + "/" + victim)
      #expect(mkfifo(input + "/" + victim, 0o644) == 0)
      for command in ["inspect \(input)", "convert \(input) \(scratch.join("out-\(victim.prefix(6))")) --to bf16",
        "shard \(input) \(scratch.join("shard-\(victim.prefix(6))")) --devices 2", "verify \(input) --deep"]
      {
        let result = try spawnSmelt(command, seconds: 30)
        #expect(result.status == 1, "\(victim): \(command): status \(result.status) \(result.stderr)")
        #expect(result.stderr.contains("not a regular file") || command.hasPrefix("verify") || victim.hasSuffix(".safetensors") && result.stderr.contains(victim),
          "\(victim): \(command): \(result.stderr)")
      }
    }
  }

  // MARK: item 8: verify on shard outputs

  @Test("verify flags extra top-level files and directories of a shard output")
  func shardTopLevelExtras() throws {
    let scratch = ScratchDirectory("shard-extras")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("shards")
    try #require(runSmelt(["shard", input, output] + Self.shardArguments).status == 0)
    try #require(runSmelt(["verify", output, "--deep"]).status == 0)
    Fixture.write("x", to: output + "/notes.txt")
    #expect(VerifyTests.codes(runSmelt(["verify", output, "--json"]).stdout) == ["unlisted-file"])
    try FileManager.default.removeItem(atPath: output + "/notes.txt")
    try FileManager.default.createDirectory(atPath: output + "/7", withIntermediateDirectories: true)
    Fixture.write(try Fixture.safetensorsBytes(Fixture.tinyTensors()[0]), to: output + "/7/model.safetensors")
    #expect(VerifyTests.codes(runSmelt(["verify", output, "--json"]).stdout) == ["unlisted-file"])
  }

  @Test("verify flags an edited shard manifest: device names, placement, expert maps")
  func shardManifestEdits() throws {
    let scratch = ScratchDirectory("shard-edits")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("shards")
    try #require(runSmelt(["shard", input, output] + Self.shardArguments).status == 0)
    let path = output + "/manifest.json"
    let original = try String(contentsOfFile: path, encoding: .utf8)
    for (label, from, to) in [
      ("device name", "\"name\": \"1\"", "\"name\": \"9\""),
      ("placement", "\"device\": \"0\"", "\"device\": \"1\""),
    ] {
      try #require(original.contains(from), "\(label)")
      try original.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
      let result = runSmelt(["verify", output, "--json"])
      #expect(result.status == 1, "\(label)")
      #expect(VerifyTests.codes(result.stdout).contains("manifest-tampered"), "\(label): \(result.stdout)")
    }
    // An edit that recomputes the checksum (a tool rewriting the manifest) is caught by the cross-checks.
    var document = try #require(try JSONParser.parse(Array(original.utf8)).objectValue)
    document = document.removing("manifest_sha256")
    var tensors = try #require(document["tensors"]?.arrayValue)
    guard case .object(var first) = tensors[0] else { Issue.record("tensor entry"); return }
    let name = try #require(first["name"]?.stringValue)
    first["name"] = .string(name + ".moved")
    tensors[0] = .object(first)
    document["tensors"] = .array(tensors)
    Fixture.write(ShardManifest.sealedBytes(.object(document)), to: path)
    let moved = runSmelt(["verify", output, "--json"])
    #expect(moved.status == 1)
    #expect(Set(VerifyTests.codes(moved.stdout)) == ["placement-mismatch"], "\(moved.stdout)")
    try original.write(toFile: path, atomically: true, encoding: .utf8)
    #expect(runSmelt(["verify", output]).status == 0, "restored")
  }

  @Test("shard --finalize refuses a part file whose bytes changed after its part wrote it")
  func finalizeRefusesChangedPartFile() throws {
    let scratch = ScratchDirectory("shard-changed")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("parts")
    for part in ["1/2", "2/2"] {
      let result = runSmelt(["shard", input, output, "--part", part] + Self.shardArguments)
      try #require(result.status == 0, "\(part): \(result.stderr)")
    }
    let weights = try #require(Fixture.names(output + "/0").first { $0.hasSuffix(".safetensors") })
    let path = output + "/0/" + weights
    var bytes = Array(FileManager.default.contents(atPath: path) ?? Data())
    bytes[bytes.count - 1] ^= 0x01  // same size, same header: only the hash can tell
    Fixture.write(bytes, to: path)
    let result = runSmelt(["shard", "--finalize", output])
    #expect(result.status == 1)
    #expect(result.stderr.contains("changed after part"), "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: output + "/manifest.json"), "nothing certified")
  }

  @Test("convert --force over a shard output leaves no stale shard manifest, and verify checks the convert output")
  func convertOverShardOutput() throws {
    let scratch = ScratchDirectory("convert-over-shard")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("out")
    try #require(runSmelt(["shard", input, output] + Self.shardArguments).status == 0)
    let shardManifest = try #require(FileManager.default.contents(atPath: output + "/manifest.json"))
    let converted = runSmelt(["convert", input, output, "--to", "fp8-block", "--force", "-q"])
    try #require(converted.status == 0, "\(converted.stderr)")
    let names = Fixture.names(output)
    #expect(!names.contains("manifest.json") && !names.contains("0") && !names.contains("1"), "\(names)")
    #expect(!names.contains(".smelt-shard-plan.json"), "\(names)")
    #expect(runSmelt(["verify", output, "--deep"]).status == 0)
    // A corrupted convert output fails verify (the stale shard manifest no longer hides it).
    let weights = try #require(names.first { $0.hasSuffix(".safetensors") })
    var bytes = Array(FileManager.default.contents(atPath: output + "/" + weights) ?? Data())
    bytes[bytes.count - 3] ^= 0x20
    Fixture.write(bytes, to: output + "/" + weights)
    #expect(runSmelt(["verify", output, "--deep"]).status == 1)
    bytes[bytes.count - 3] ^= 0x20
    Fixture.write(bytes, to: output + "/" + weights)
    #expect(runSmelt(["verify", output, "--deep"]).status == 0, "restored")
    // A shard manifest beside a convert manifest (left by an older smelt) is reported, and does not hide
    // the convert output from the checks.
    Fixture.write(Array(shardManifest), to: output + "/manifest.json")
    let stale = runSmelt(["verify", output, "--json"])
    #expect(stale.status == 1 && VerifyTests.codes(stale.stdout).contains("stale-manifest"), "\(stale.stdout)")
  }

  // MARK: item 9: shard and non-empty outputs

  @Test("shard refuses a non-empty output directory unless --force, and --force removes stale results")
  func shardNonEmptyOutput() throws {
    let scratch = ScratchDirectory("shard-nonempty")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("out")
    try FileManager.default.createDirectory(atPath: output + "/0", withIntermediateDirectories: true)
    Fixture.write("mine", to: output + "/0/model-00001-of-00002.safetensors")
    let refused = runSmelt(["shard", input, output] + Self.shardArguments)
    #expect(refused.status == 1)
    #expect(refused.stderr.contains("not empty") && refused.stderr.contains("--force"), "\(refused.stderr)")
    #expect((try? String(contentsOfFile: output + "/0/model-00001-of-00002.safetensors", encoding: .utf8)) == "mine")
    // A first run over three devices, then --force over two: device 2 disappears.
    try FileManager.default.removeItem(atPath: output)
    try #require(runSmelt(["shard", input, output, "--devices", "3", "-q"]).status == 0)
    #expect(runSmelt(["shard", input, output, "--devices", "2", "-q"]).status == 1, "a finished output is not empty")
    let forced = runSmelt(["shard", input, output, "--devices", "2", "--force", "-q"])
    try #require(forced.status == 0, "\(forced.stderr)")
    #expect(!Fixture.names(output).contains("2"), "\(Fixture.names(output))")
    #expect(runSmelt(["verify", output, "--deep"]).status == 0)
    // Over a convert output: its weights, manifest and copied sidecars go; the result verifies.
    let converted = scratch.join("converted")
    try #require(runSmelt(["convert", input, converted, "--to", "bf16", "-q"]).status == 0)
    let sharded = runSmelt(["shard", input, converted, "--devices", "2", "--force", "-q"])
    try #require(sharded.status == 0, "\(sharded.stderr)")
    #expect(Set(Fixture.names(converted)) == ["0", "1", "manifest.json", ".smelt-shard-plan.json"], "\(Fixture.names(converted))")
    let verified = runSmelt(["verify", converted, "--deep"])
    #expect(verified.status == 0, "\(verified.stderr)")
  }

  // MARK: item 11: indexes that do not cover the directory

  @Test("convert and shard refuse an index that names no tensors or leaves out a shard, unless told")
  func incompleteIndex() throws {
    let scratch = ScratchDirectory("partial-index")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let indexPath = input + "/model.safetensors.index.json"
    let index = try String(contentsOfFile: indexPath, encoding: .utf8)
    // Only the first shard's tensors.
    let partial = index.split(separator: "\n").filter { !$0.contains("model-00002-of-00002") }.joined(separator: "\n")
      .replacingOccurrences(of: "\",\n  }", with: "\"\n  }")
    try partial.write(toFile: indexPath, atomically: true, encoding: .utf8)
    try #require(try Checkpoint.open(input).unindexedFiles == ["model-00002-of-00002.safetensors"])
    let refused = runSmelt(["convert", input, scratch.join("a"), "--to", "bf16"])
    #expect(refused.status == 1)
    #expect(refused.stderr.contains("model-00002-of-00002.safetensors") && refused.stderr.contains("--ignore-unindexed"), "\(refused.stderr)")
    #expect(runSmelt(["shard", input, scratch.join("s"), "--devices", "2", "-q"]).status == 1)
    #expect(runSmelt(["convert", input, scratch.join("b"), "--to", "bf16", "--ignore-unindexed", "-q"]).status == 0)

    Fixture.write("{\"metadata\": {}, \"weight_map\": {}}", to: indexPath)
    for extra in [[], ["--ignore-unindexed"]] {
      let empty = runSmelt(["convert", input, scratch.join("c\(extra.count)"), "--to", "bf16"] + extra)
      #expect(empty.status == 1, "\(extra)")
      #expect(empty.stderr.contains("names no tensors"), "\(empty.stderr)")
    }
  }

  // MARK: item 14: sidecars

  @Test("sidecar links out of the input are not copied (and said so); copies keep their modes")
  func sidecarLinksAndModes() throws {
    let scratch = ScratchDirectory("sidecars")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let secret = scratch.join("secret.txt")
    Fixture.write("top secret", to: secret)
    try FileManager.default.createSymbolicLink(atPath: input + "/leak.txt", withDestinationPath: secret)
    try FileManager.default.createSymbolicLink(atPath: input + "/alias.json", withDestinationPath: input + "/tokenizer.json")
    #expect(chmod(input + "/tokenizer.json", 0o600) == 0)
    #expect(mkfifo(input + "/pipe.txt", 0o644) == 0)
    for (command, copies) in [
      (["convert", input, scratch.join("out"), "--to", "bf16"], [scratch.join("out")]),
      (["shard", input, scratch.join("shards"), "--devices", "2"], [scratch.join("shards") + "/0", scratch.join("shards") + "/1"]),
    ] {
      let result = runSmelt(command)
      try #require(result.status == 0, "\(result.stderr)")
      #expect(result.stderr.contains("not copying 'leak.txt'") && result.stderr.contains("outside the checkpoint"), "\(result.stderr)")
      #expect(result.stderr.contains("not copying 'pipe.txt'"), "\(result.stderr)")
      for directory in copies {
        let names = Fixture.names(directory)
        #expect(!names.contains("leak.txt") && !names.contains("pipe.txt"), "\(names)")
        #expect(names.contains("alias.json"), "a link inside the input is copied: \(names)")
        let mode = (try FileManager.default.attributesOfItem(atPath: directory + "/tokenizer.json")[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600, "mode \(String(mode, radix: 8))")
      }
    }
  }

  // MARK: item 13: signals

  @Test("SIGPIPE, SIGHUP and SIGUSR1 sent to a running conversion remove its temporary files (exit 130)")
  func signalsDuringConversion() throws {
    let smelt = try #require(smeltExecutable, "build the smelt product first")
    let scratch = ScratchDirectory("signals")
    defer { scratch.remove() }
    // 8 MiB of BF16 converted with the clip search: seconds of work, far more than the 0.5 s wait.
    let input = scratch.join("in")
    try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
    let tensors = (0..<4).map { FixtureTensor.bf16("model.layers.\($0).mlp.up_proj.weight", [1024, 1024], seed: UInt64($0)) }
    Fixture.write(try Fixture.safetensorsBytes(tensors), to: input + "/model.safetensors")
    for signalNumber in [SIGPIPE, SIGHUP, SIGUSR1] {
      let output = scratch.join("out-\(signalNumber)")
      let process = Process()
      process.executableURL = URL(fileURLWithPath: smelt)
      process.arguments = ["convert", input, output, "--to", "int4-g128", "--search", "-q"]
      process.standardError = FileHandle.nullDevice
      try process.run()
      usleep(500_000)
      kill(process.processIdentifier, signalNumber)
      process.waitUntilExit()
      #expect(process.terminationReason == .exit && process.terminationStatus == 130, "signal \(signalNumber): \(process.terminationReason) \(process.terminationStatus)")
      #expect(!Fixture.names(output).contains { $0.hasSuffix(".smelt-tmp") }, "signal \(signalNumber): \(Fixture.names(output))")
    }
  }

  // MARK: item 15: starved processes

  @Test("too few file descriptors or too little address space: exit 1 with a message, no signal")
  func starvedProcess() throws {
    let sample = samplePath("tiny-deepseek-v3")
    for limit in ["ulimit -n 12;", "ulimit -v 150000;"] {
      for command in ["inspect \(sample)", "verify --deep \(sample)", "convert \(sample) /nonexistent-smelt/out --to bf16"] {
        let result = try spawnSmelt(command, prefix: limit)
        #expect(result.status == 1, "\(limit) \(command): \(result.stderr)")
        #expect(result.stderr.contains(limit.hasPrefix("ulimit -n") ? "ulimit -n" : "ulimit -v"), "\(limit): \(result.stderr)")
      }
    }
  }

  // MARK: item 16: messages

  @Test("messages say what is wrong: no --resume advice for shard, manifests are not indexes, integers out of range")
  func messages() throws {
    let scratch = ScratchDirectory("messages")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    // A file-size limit stops shard: the advice must not be --resume (shard has none); convert's is.
    let shard = try spawnSmelt("shard \(input) \(scratch.join("s")) --devices 2", prefix: "ulimit -f 8;")
    #expect(shard.status == 1)
    #expect(shard.stderr.contains("File too large") && !shard.stderr.contains("--resume"), "\(shard.stderr)")
    let convert = try spawnSmelt("convert \(input) \(scratch.join("c")) --to bf16 --max-shard-size 6KB", prefix: "ulimit -f 10;")
    #expect(convert.status == 1)
    #expect(convert.stderr.contains("--resume"), "\(convert.stderr)")

    // A broken smelt-manifest.json is an invalid manifest, not an "invalid index".
    let output = scratch.join("out")
    try #require(runSmelt(["convert", input, output, "--to", "bf16", "-q"]).status == 0)
    Fixture.write("{\"files\": 3}", to: output + "/smelt-manifest.json")
    let verified = runSmelt(["verify", output])
    #expect(verified.stderr.contains("invalid manifest") && !verified.stderr.contains("invalid index"), "\(verified.stderr)")

    // An integer too large for 64 bits is described as such.
    let big = scratch.join("big")
    try Fixture.writeCheckpoint(Fixture.tinyTensors(), to: big, config: "{\"hidden_size\": 100000000000000000000000}")
    let inspected = runSmelt(["inspect", big])
    #expect(inspected.status == 1)
    #expect(inspected.stderr.contains("hidden_size") && !inspected.stderr.contains("found an integer"), "\(inspected.stderr)")
  }

  @Test("verify resolves index paths like loaders do: ./x.safetensors and sub/x.safetensors exist")
  func indexPathsResolved() throws {
    let scratch = ScratchDirectory("index-paths")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let indexPath = input + "/model.safetensors.index.json"
    var index = try String(contentsOfFile: indexPath, encoding: .utf8)
    index = index.replacingOccurrences(of: "\"model-00001-of-00002.safetensors\"", with: "\"./model-00001-of-00002.safetensors\"")
    index = index.replacingOccurrences(of: "\"model-00002-of-00002.safetensors\"", with: "\"sub/model-00002-of-00002.safetensors\"")
    try index.write(toFile: indexPath, atomically: true, encoding: .utf8)
    try FileManager.default.createDirectory(atPath: input + "/sub", withIntermediateDirectories: true)
    try FileManager.default.moveItem(atPath: input + "/model-00002-of-00002.safetensors", toPath: input + "/sub/model-00002-of-00002.safetensors")
    let result = runSmelt(["verify", input])
    #expect(!result.stderr.contains("does not exist"), "\(result.stderr)")
    #expect(result.status == 0, "\(result.stderr)")
  }
}
