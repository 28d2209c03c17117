// `smelt verify`: a clean output passes; any changed, missing or added file, any leftover of an interrupted
// run, any NaN or non-positive scale (with --deep) fails with exit 1 and names the file and tensor.
import Foundation
import JSON
import SafeTensors
import SystemIO
import TensorCore
import Testing

@Suite("smelt verify") struct VerifyTests {
  /// The tiny checkpoint converted to fp8-block in several files (with index, config, tokenizer, manifest).
  static func convertedOutput(_ scratch: ScratchDirectory) throws -> String {
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("out")
    let result = runSmelt(["convert", input, output, "--to", "fp8-block", "--max-shard-size", "10KB", "-q"])
    try #require(result.status == 0, "\(result.stderr)")
    return output
  }

  @Test("a fresh conversion verifies clean, also with --deep")
  func clean() throws {
    let scratch = ScratchDirectory("verify-clean")
    defer { scratch.remove() }
    let output = try Self.convertedOutput(scratch)
    let names = Fixture.names(output)
    #expect(names.filter { $0.hasSuffix(".safetensors") }.count >= 3)
    #expect(names.contains("model.safetensors.index.json"))
    for arguments in [["verify", output], ["verify", output, "--deep"]] {
      let result = runSmelt(arguments)
      #expect(result.status == 0, "\(result.stderr)")
      #expect(result.stdout.hasPrefix("OK: \(output): "), "\(result.stdout)")
      #expect(result.stderr.isEmpty)
    }
    let json = runSmelt(["verify", output, "--deep", "--json"])
    let value = try JSONParser.parse(Array(json.stdout.utf8))
    #expect(value["ok"]?.boolValue == true)
    #expect(value["findings"]?.arrayValue?.isEmpty == true)
  }

  @Test("a flipped byte in any output file is caught and the file named")
  func flippedByteInEveryFile() throws {
    let scratch = ScratchDirectory("verify-flip")
    defer { scratch.remove() }
    let output = try Self.convertedOutput(scratch)
    var generator = SplitMix64(seed: 0x5EED)
    var checked = 0
    for name in Fixture.names(output) {
      let path = output + "/" + name
      let original = Array(FileManager.default.contents(atPath: path) ?? Data())
      try #require(!original.isEmpty)
      // The first and last byte, and a random offset.
      let offsets = [0, original.count - 1, Int(generator.next() % UInt64(original.count))]
      for offset in offsets {
        var bytes = original
        bytes[offset] ^= UInt8(truncatingIfNeeded: 1 << (generator.next() % 8))
        Fixture.write(bytes, to: path)
        let result = runSmelt(["verify", output])
        #expect(result.status == 1, "\(name) byte \(offset) flipped: not caught")
        #expect(result.stderr.contains(name), "\(name) byte \(offset): \(result.stderr)")
        checked += 1
      }
      Fixture.write(original, to: path)
    }
    #expect(checked >= 21)
    #expect(runSmelt(["verify", output, "--deep"]).status == 0, "restored")
  }

  @Test("smelt shard output: every file hashed against manifest.json, device directories checked as checkpoints")
  func shardOutput() throws {
    let scratch = ScratchDirectory("verify-shard")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let output = scratch.join("shards")
    let sharded = runSmelt(["shard", input, output, "--devices", "2", "--max-shard-size", "10KB", "-q"])
    try #require(sharded.status == 0, "\(sharded.stderr)")
    #expect(runSmelt(["verify", output, "--deep"]).status == 0)
    var generator = SplitMix64(seed: 0x5AAD)
    var checked = 0
    for device in ["0", "1"] {
      for name in Fixture.names(output + "/" + device) {
        let path = output + "/" + device + "/" + name
        let original = Array(FileManager.default.contents(atPath: path) ?? Data())
        var bytes = original
        bytes[Int(generator.next() % UInt64(bytes.count))] ^= 0x10
        Fixture.write(bytes, to: path)
        let result = runSmelt(["verify", output])
        #expect(result.status == 1, "\(device)/\(name)")
        #expect(result.stderr.contains("\(device)/\(name)"), "\(device)/\(name): \(result.stderr)")
        Fixture.write(original, to: path)
        checked += 1
      }
    }
    #expect(checked >= 8)
    Fixture.write("x", to: output + "/1/extra.txt")
    #expect(Self.codes(runSmelt(["verify", output, "--json"]).stdout) == ["unlisted-file"])
  }

  @Test("missing, added and leftover files are named")
  func missingAndExtraFiles() throws {
    let scratch = ScratchDirectory("verify-files")
    defer { scratch.remove() }
    let output = try Self.convertedOutput(scratch)
    let shard = Fixture.names(output).first { $0.hasSuffix(".safetensors") }!
    let moved = scratch.join("moved")
    try FileManager.default.moveItem(atPath: output + "/" + shard, toPath: moved)
    var result = runSmelt(["verify", output, "--json"])
    #expect(result.status == 1)
    var codes = Self.codes(result.stdout)
    #expect(codes.contains("file-missing") && codes.contains("index-names-missing-file"), "\(codes)")
    #expect(result.stdout.contains(shard))
    try FileManager.default.moveItem(atPath: moved, toPath: output + "/" + shard)

    for (name, code) in [
      ("notes.txt", "unlisted-file"), ("model-00099-of-00099.safetensors", "unlisted-file"),
      (".\(shard).smelt-tmp", "incomplete-run"), (".smelt-progress.json", "incomplete-run"),
    ] {
      Fixture.write(name.hasSuffix(".safetensors") ? BadInputTests.validFile : Array("x".utf8), to: output + "/" + name)
      result = runSmelt(["verify", output, "--json"])
      codes = Self.codes(result.stdout)
      #expect(result.status == 1, "\(name)")
      #expect(codes.contains(code), "\(name): \(codes)")
      #expect(result.stdout.contains(name), "\(name)")
      try FileManager.default.removeItem(atPath: output + "/" + name)
    }
    #expect(runSmelt(["verify", output]).status == 0)
  }

  @Test("a directory being written by another process is reported")
  func inUse() throws {
    let scratch = ScratchDirectory("verify-lock")
    defer { scratch.remove() }
    let output = try Self.convertedOutput(scratch)
    // flock locks belong to the open file description: a second descriptor in this process conflicts too.
    let lock = try DirectoryLock(directory: output)
    let result = runSmelt(["verify", output])
    lock.release()
    #expect(result.status == 1)
    #expect(result.stderr.contains("writing this directory"), "\(result.stderr)")
    #expect(runSmelt(["verify", output]).status == 0, "lock file removed on release")
  }

  static let scaleCases: [(String, [Float], String)] = [
    ("zero scale", [0.5, 0], "element 1 ([0, 1])"),
    ("negative scale", [-0.5, 0.5], "element 0 ([0, 0])"),
    ("NaN scale", [0.5, .nan], "element 1"),
    ("infinite scale", [.infinity, 0.5], "element 0"),
  ]

  @Test("--deep: scales that are not positive finite numbers are named", arguments: 0..<scaleCases.count)
  func badScales(_ caseIndex: Int) throws {
    let (label, values, position) = Self.scaleCases[caseIndex]
    let scratch = ScratchDirectory("verify-scale")
    defer { scratch.remove() }
    let module = "model.layers.0.mlp.down_proj"
    let tensors = BadInputTests.fp8Module(module, columns: 256, scale: .f32(module + ".weight_scale_inv", [1, 2], values))
    let directory = scratch.join("ckpt")
    try Fixture.writeCheckpoint([tensors], to: directory)
    // Without --deep only headers and the config are read (the fixture's config has no quantization_config,
    // which the consumer-view check reports; the scale values are not looked at).
    let shallow = runSmelt(["verify", directory])
    #expect(!shallow.stderr.contains("value(s) that are not"), "\(label): values are only read with --deep")
    let result = runSmelt(["verify", directory, "--deep"])
    #expect(result.status == 1, "\(label)")
    #expect(result.stderr.contains("scale tensor '\(module).weight_scale_inv'"), "\(label): \(result.stderr)")
    #expect(result.stderr.contains(position), "\(label): \(result.stderr)")
    #expect(result.stderr.contains("warning: no smelt-manifest.json"), "\(label)")
  }

  @Test("--deep: NaN and infinity are found in every floating dtype", arguments: [
    (DType.float32, [UInt8](arrayLiteral: 0x00, 0x00, 0xC0, 0x7F)), (.float32, [0x00, 0x00, 0x80, 0xFF]),
    (.bfloat16, [0xC0, 0x7F]), (.float16, [0x00, 0x7C]), (.float64, [0, 0, 0, 0, 0, 0, 0xF8, 0x7F]),
    (.float8E4M3FN, [0x7F]), (.float8E5M2, [0x7C]), (.float8E8M0FNU, [0xFF]), (.float8E4M3FNUZ, [0x80]),
  ])
  func nonFiniteEveryDType(_ dtype: DType, _ bad: [UInt8]) throws {
    let scratch = ScratchDirectory("verify-nan")
    defer { scratch.remove() }
    let width = bad.count
    var bytes = [UInt8](repeating: 0, count: 6 * width)
    bytes.replaceSubrange((3 * width)..<(4 * width), with: bad)
    let directory = scratch.join("ckpt")
    try Fixture.writeCheckpoint([[FixtureTensor(name: "model.x.weight", dtype: dtype, shape: [2, 3], bytes: bytes)]], to: directory)
    let result = runSmelt(["verify", directory, "--deep"])
    #expect(result.status == 1, "\(dtype)")
    #expect(result.stderr.contains("tensor 'model.x.weight' (\(dtype) [2, 3]) has 1 NaN/infinite value(s); first at element 3 ([1, 0])"), "\(result.stderr)")
  }

  @Test("index and headers disagreeing are reported without a manifest")
  func indexConsistency() throws {
    let scratch = ScratchDirectory("verify-index")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    #expect(runSmelt(["verify", input, "--deep"]).status == 0)
    let indexPath = input + "/model.safetensors.index.json"
    let text = String(decoding: FileManager.default.contents(atPath: indexPath) ?? Data(), as: UTF8.self)
    Fixture.write(text.replacingOccurrences(of: "\"model.norm.weight\": \"model-00002", with: "\"model.norm.weight\": \"model-00001"), to: indexPath)
    var result = runSmelt(["verify", input, "--json"])
    #expect(result.status == 1)
    #expect(Self.codes(result.stdout).contains("index-tensor-missing"))
    #expect(result.stdout.contains("model.norm.weight"))
    Fixture.write(text.replacingOccurrences(of: "\"total_size\": ", with: "\"total_size\": 1"), to: indexPath)
    result = runSmelt(["verify", input, "--json"])
    #expect(Self.codes(result.stdout) == ["index-total-size", "manifest-missing"], "\(result.stdout)")
    Fixture.write(BadInputTests.validFile, to: input + "/extra.safetensors")
    Fixture.write(text, to: indexPath)
    result = runSmelt(["verify", input, "--json"])
    #expect(Self.codes(result.stdout).contains("file-not-in-index"))
  }

  @Test("a path that is not a directory, and an empty directory, fail")
  func notADirectory() {
    let scratch = ScratchDirectory("verify-empty")
    defer { scratch.remove() }
    #expect(runSmelt(["verify", scratch.join("nothing")]).status == 1)
    #expect(runSmelt(["verify", scratch.path]).stderr.contains("no .safetensors files"))
  }

  static func codes(_ json: String) -> [String] {
    guard let value = try? JSONParser.parse(Array(json.utf8)), let findings = value["findings"]?.arrayValue else { return ["<bad json>"] }
    return findings.compactMap { $0["code"]?.stringValue }
  }
}

