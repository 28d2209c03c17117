// The bad-input matrix: hostile or broken checkpoints through `smelt inspect` / `smelt convert`. Every case
// must end with exit 1, an error naming the file (and the tensor or field where there is one), and no
// partial output.
import Foundation
import SafeTensors
import TensorCore
import Testing

/// One malformed single-file input: its bytes and the words the error must contain.
struct BadFileCase: CustomStringConvertible, Sendable {
  var label: String
  var bytes: [UInt8]
  var mentions: [String]
  var description: String { label }
}

/// `8-byte N + header JSON (space-padded) + data`.
func rawSafeTensors(_ header: String, data: [UInt8] = [], headerByteCount: UInt64? = nil) -> [UInt8] {
  var json = Array(header.utf8)
  json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
  var bytes: [UInt8] = []
  withUnsafeBytes(of: (headerByteCount ?? UInt64(json.count)).littleEndian) { bytes.append(contentsOf: $0) }
  return bytes + json + data
}

@Suite("bad input matrix") struct BadInputTests {
  /// A small valid file: 2 tensors, metadata, 24 data bytes (190 bytes in all).
  static let validFile: [UInt8] = rawSafeTensors(
    #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#,
    data: Array(0..<24))

  @Test("a file truncated at any byte is refused by inspect and convert, naming the file")
  func truncatedAtEveryByte() throws {
    let scratch = ScratchDirectory("truncate")
    defer { scratch.remove() }
    let path = scratch.join("model.safetensors")
    Fixture.write(Self.validFile, to: path)
    #expect(runSmelt(["inspect", path]).status == 0)
    for length in 0..<Self.validFile.count {
      Fixture.write(Array(Self.validFile[0..<length]), to: path)
      let result = runSmelt(["inspect", path])
      #expect(result.status == 1, "prefix \(length): \(result.stderr)")
      #expect(result.stderr.contains(path), "prefix \(length): \(result.stderr)")
    }
    // Convert, for a sample of cut points (header length field, header JSON, data).
    for length in [0, 7, 8, 40, Self.validFile.count - 25, Self.validFile.count - 1] {
      Fixture.write(Array(Self.validFile[0..<length]), to: path)
      let output = scratch.join("out-\(length)")
      let result = runSmelt(["convert", path, output, "--to", "f32"])
      #expect(result.status == 1, "prefix \(length)")
      #expect(result.stderr.contains(path), "prefix \(length): \(result.stderr)")
      expectNoPartialOutput(output, "prefix \(length)")
    }
  }

  @Test("a truncated shard of a checkpoint stops convert before any output")
  func truncatedShard() throws {
    let scratch = ScratchDirectory("truncate-shard")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let shard = input + "/model-00002-of-00002.safetensors"
    let whole = Array(FileManager.default.contents(atPath: shard) ?? Data())
    for length in [4, 8, 100, whole.count / 2, whole.count - 1] {
      Fixture.write(Array(whole[0..<length]), to: shard)
      let output = scratch.join("out-\(length)")
      let result = runSmelt(["convert", input, output, "--to", "fp8-block", "--max-shard-size", "10KB"])
      #expect(result.status == 1)
      #expect(result.stderr.contains("model-00002-of-00002.safetensors"), "\(length): \(result.stderr)")
      expectNoPartialOutput(output, "shard cut at \(length)")
    }
  }

  static let malformedFiles: [BadFileCase] = [
    BadFileCase(
      label: "header length promising a terabyte", bytes: rawSafeTensors("{}", headerByteCount: 1 << 40),
      mentions: ["header"]),
    BadFileCase(
      label: "tensor promising 4 TB of data in a tiny file",
      bytes: rawSafeTensors(#"{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}"#, data: [0, 0, 0, 0]),
      mentions: ["truncated", "4398046511192"]),
    BadFileCase(
      label: "shape whose element count overflows Int",
      bytes: rawSafeTensors(#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#),
      mentions: ["'w'", "overflow"]),
    BadFileCase(
      label: "shape whose bit count overflows", bytes: rawSafeTensors(#"{"w":{"dtype":"U64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#),
      mentions: ["'w'"]),
    BadFileCase(
      label: "dimension of 2^64", bytes: rawSafeTensors(#"{"w":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}}"#),
      mentions: ["'w'"]),
    BadFileCase(
      label: "negative dimension", bytes: rawSafeTensors(#"{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#),
      mentions: ["'w'"]),
    BadFileCase(
      label: "F32 [2,2] stored in 12 bytes",
      bytes: rawSafeTensors(#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, data: Array(repeating: 0, count: 12)),
      mentions: ["'w'", "F32"]),
    BadFileCase(
      label: "BF16 tensor with F32-sized data",
      bytes: rawSafeTensors(#"{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 16)),
      mentions: ["'w'", "BF16"]),
    BadFileCase(
      label: "unknown dtype", bytes: rawSafeTensors(#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 16)),
      mentions: ["'w'", "F128"]),
    BadFileCase(
      label: "overlapping tensors",
      bytes: rawSafeTensors(
        #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        data: Array(repeating: 0, count: 12)),
      mentions: ["'b'"]),
    BadFileCase(
      label: "trailing bytes after the data (polyglot)",
      bytes: rawSafeTensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 9)),
      mentions: ["trailing bytes"]),
  ]

  @Test("malformed headers: inspect and convert refuse, naming file and tensor", arguments: malformedFiles)
  func malformedHeader(_ testCase: BadFileCase) throws {
    let scratch = ScratchDirectory("malformed")
    defer { scratch.remove() }
    let path = scratch.join("model.safetensors")
    Fixture.write(testCase.bytes, to: path)
    for command in [["inspect", path], ["convert", path, scratch.join("out"), "--to", "bf16"]] {
      let result = runSmelt(command)
      #expect(result.status == 1, "\(command[0]): \(result.stderr)")
      #expect(result.stderr.hasPrefix("Error: \(path): "), "\(command[0]): \(result.stderr)")
      for word in testCase.mentions { #expect(result.stderr.contains(word), "\(command[0]): '\(word)' not in \(result.stderr)") }
    }
    expectNoPartialOutput(scratch.join("out"), testCase.label)
  }

  /// Index edits: (label, transform of the index text, words the error must contain).
  static let indexCases: [(String, @Sendable (String) -> String, [String])] = [
    ("index naming a missing shard", { $0.replacingOccurrences(of: "model-00002-of-00002", with: "model-00009-of-00009") },
     ["model-00009-of-00009.safetensors", "does not exist"]),
    ("index escaping the directory with ..", { $0.replacingOccurrences(of: "\"model-00002-of-00002", with: "\"../model-00002-of-00002") },
     ["../model-00002-of-00002.safetensors", "outside the checkpoint directory", "model.layers.1"]),
    ("index naming an absolute path", { $0.replacingOccurrences(of: "\"model-00002-of-00002", with: "\"/tmp/model-00002-of-00002") },
     ["/tmp/model-00002-of-00002.safetensors", "outside"]),
    ("index placing a tensor in the wrong shard", { text in
      text.replacingOccurrences(
        of: "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"", with: "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"")
    }, ["model.norm.weight", "model-00001-of-00002.safetensors"]),
    ("index that is not JSON", { String($0.dropLast(10)) }, ["model.safetensors.index.json"]),
    ("index without weight_map", { _ in "{\"metadata\": {}}" }, ["model.safetensors.index.json", "weight_map"]),
  ]

  @Test("broken indexes: convert refuses, naming the index, file and tensor", arguments: 0..<indexCases.count)
  func brokenIndex(_ caseIndex: Int) throws {
    let (label, transform, mentions) = Self.indexCases[caseIndex]
    let scratch = ScratchDirectory("index")
    defer { scratch.remove() }
    let input = try Fixture.tinyCheckpoint(in: scratch)
    let indexPath = input + "/model.safetensors.index.json"
    let text = String(decoding: FileManager.default.contents(atPath: indexPath) ?? Data(), as: UTF8.self)
    Fixture.write(transform(text), to: indexPath)
    let output = scratch.join("out")
    let result = runSmelt(["convert", input, output, "--to", "fp8-block"])
    #expect(result.status == 1, "\(label): \(result.stderr)")
    for word in mentions { #expect(result.stderr.contains(word), "\(label): '\(word)' not in \(result.stderr)") }
    expectNoPartialOutput(output, label)
    #expect(runSmelt(["inspect", input]).status == 1, "\(label): inspect")
  }

  /// An FP8 block-quantized module: F8_E4M3 weight [rows, columns] (all codes 0x38 = 1.0) and its scale.
  static func fp8Module(_ path: String, rows: Int = 128, columns: Int = 128, scale: FixtureTensor?) -> [FixtureTensor] {
    var tensors = [FixtureTensor(name: path + ".weight", dtype: .float8E4M3FN, shape: [rows, columns], bytes: Array(repeating: 0x38, count: rows * columns))]
    if let scale { tensors.append(scale) }
    return tensors
  }

  static let scaleCases: [(String, [FixtureTensor], [String])] = {
    let module = "model.layers.0.mlp.down_proj"
    let good = FixtureTensor.f32(module + ".weight_scale_inv", [1, 1], [0.01])
    return [
      ("FP8 weight without its scale", fp8Module(module, scale: nil) + fp8Module("model.layers.0.mlp.up_proj", scale: .f32("model.layers.0.mlp.up_proj.weight_scale_inv", [1, 1], [1])),
       [module + ".weight", "weight_scale_inv"]),
      ("scale with the wrong shape", fp8Module(module, scale: .f32(module + ".weight_scale_inv", [2, 2], [1, 1, 1, 1])),
       [module + ".weight_scale_inv", "[2, 2]"]),
      // F32 and BF16 (Qwen3.5's releases) are the DeepSeek spelling's scale dtypes; F16 is not.
      ("scale with the wrong dtype",
       fp8Module(module, scale: FixtureTensor(name: module + ".weight_scale_inv", dtype: .float16, shape: [1, 1], bytes: [0x00, 0x3C])),
       [module + ".weight_scale_inv", "F16"]),
      ("1-D scale", fp8Module(module, scale: .f32(module + ".weight_scale_inv", [1], [1])), [module + ".weight_scale_inv"]),
      ("NaN scale", fp8Module(module, scale: .f32(module + ".weight_scale_inv", [1, 1], [.nan])), [module + ".weight"]),
      ("infinite scale", fp8Module(module, scale: .f32(module + ".weight_scale_inv", [1, 1], [.infinity])), [module + ".weight"]),
      ("scale without its weight", [good], [module + ".weight"]),
    ]
  }()

  @Test("quantized weights with a missing or misshaped scale: convert refuses, naming the tensor", arguments: 0..<scaleCases.count)
  func badScale(_ caseIndex: Int) throws {
    let (label, tensors, mentions) = Self.scaleCases[caseIndex]
    let scratch = ScratchDirectory("scale")
    defer { scratch.remove() }
    let input = scratch.join("in")
    // A plain tensor in a first shard, so a failure in the second one must clean up a finished file.
    try Fixture.writeCheckpoint([[.bf16("model.embed_tokens.weight", [64, 64])], tensors], to: input)
    let output = scratch.join("out")
    let result = runSmelt(["convert", input, output, "--to", "bf16", "--max-shard-size", "4KB"])
    #expect(result.status == 1, "\(label): \(result.stderr)")
    for word in mentions { #expect(result.stderr.contains(word), "\(label): '\(word)' not in \(result.stderr)") }
    expectNoPartialOutput(output, label)
  }

  @Test("NaN or infinity in a weight to quantize: convert fails naming the tensor and element, leaves nothing", arguments: [
    UInt16(0x7FC0), 0x7F80, 0xFF80,
  ])
  func nonFiniteQuantize(_ bits: UInt16) throws {
    let scratch = ScratchDirectory("nan-quantize")
    defer { scratch.remove() }
    let tensor = "model.layers.1.mlp.down_proj.weight"
    let input = try Fixture.tinyCheckpoint(in: scratch, nanIn: tensor, bits: bits)
    let output = scratch.join("out")
    let result = runSmelt(["convert", input, output, "--to", "fp8-block", "--max-shard-size", "10KB"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("'\(tensor)'"), "\(result.stderr)")
    #expect(result.stderr.contains("element 5"), "\(result.stderr)")
    expectNoPartialOutput(output, "NaN \(bits)")
  }

  @Test("NaN in a weight that is cast: kept faithfully, named by convert's summary and by verify --deep")
  func nonFiniteCast() throws {
    let scratch = ScratchDirectory("nan-cast")
    defer { scratch.remove() }
    let tensor = "model.layers.1.self_attn.q_proj.weight"
    let input = try Fixture.tinyCheckpoint(in: scratch, nanIn: tensor)
    let output = scratch.join("out")
    let result = runSmelt(["convert", input, output, "--to", "f32"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stderr.contains("warning: tensor '\(tensor)' has 1 NaN/infinite value(s) (first at element 5)"), "\(result.stderr)")
    let verify = runSmelt(["verify", output, "--deep"])
    #expect(verify.status == 1)
    #expect(verify.stderr.contains("'\(tensor)'") && verify.stderr.contains("element 5 ([0, 5])"), "\(verify.stderr)")
    #expect(runSmelt(["verify", output]).status == 0, "without --deep values are not read")
  }

  static let configCases: [(String, String, [String])] = [
    ("a field with the wrong type", #"{"hidden_size": "64"}"#, ["config.json", "hidden_size", "integer"]),
    ("a nested field with the wrong type", #"{"rope_scaling": {"factor": "x"}}"#, ["config.json", "rope_scaling.factor"]),
    ("quantization_config that is not an object", #"{"quantization_config": 5}"#, ["config.json", "quantization_config"]),
    ("architectures that is not a list", #"{"architectures": "DeepseekV3ForCausalLM"}"#, ["config.json", "architectures"]),
    ("not JSON", #"{"hidden_size": 64"#, ["config.json"]),
    ("not an object", "[1, 2]", ["config.json", "object"]),
  ]

  @Test("config.json with wrong types or broken JSON: inspect and convert refuse, naming the field", arguments: 0..<configCases.count)
  func badConfig(_ caseIndex: Int) throws {
    let (label, config, mentions) = Self.configCases[caseIndex]
    let scratch = ScratchDirectory("config")
    defer { scratch.remove() }
    let input = scratch.join("in")
    try Fixture.writeCheckpoint(Fixture.tinyTensors(), to: input, config: config)
    let output = scratch.join("out")
    for command in [["inspect", input], ["convert", input, output, "--to", "fp8-block"]] {
      let result = runSmelt(command)
      #expect(result.status == 1, "\(label) \(command[0]): \(result.stderr)")
      for word in mentions { #expect(result.stderr.contains(word), "\(label): '\(word)' not in \(result.stderr)") }
    }
    expectNoPartialOutput(output, label)
  }

  @Test("config.json missing fields: convert needs none of them and keeps the document")
  func configMissingFields() throws {
    let scratch = ScratchDirectory("config-empty")
    defer { scratch.remove() }
    let input = scratch.join("in")
    try Fixture.writeCheckpoint(Fixture.tinyTensors(), to: input, config: "{}")
    let output = scratch.join("out")
    let result = runSmelt(["convert", input, output, "--to", "fp8-block", "-q"])
    #expect(result.status == 0, "\(result.stderr)")
    let written = String(decoding: FileManager.default.contents(atPath: output + "/config.json") ?? Data(), as: UTF8.self)
    #expect(written.contains("quantization_config"))
    #expect(runSmelt(["verify", output, "--deep"]).status == 0)
  }
}
