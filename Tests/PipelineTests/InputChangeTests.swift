// Issue 15 item 1: an input truncated while Smelt reads it (another process rewriting a shard, a network file
// system) killed the process with SIGBUS, temporary files on disk and the output locked. The truncation here
// is controlled: the checkpoint is opened (mapped), then cut, then converted, so the conversion is certain
// to read pages that are gone.
@testable import Checkpoint
import Quantization
import SafeTensors
import SystemIO
import TensorCore
import Testing
import WeightFormats
@testable import Pipeline

#if canImport(Glibc)
  import Glibc
#endif

/// A one-file BF16 checkpoint of two 512×512 linear weights (1 MiB), in a fresh directory.
private func writeInput(_ name: String) throws -> String {
  let directory = try scratch(name)
  try FileSystem.createDirectory(directory)
  let tensors = (0..<2).map {
    PlannedTensor(name: "model.layers.\($0).mlp.up_proj.weight", dtype: .bfloat16, shape: [512, 512])
  }
  let writer = try SafeTensorsFileWriter(path: FileSystem.join(directory, "model.safetensors"), layout: SafeTensorsLayout(tensors: tensors))
  let bits = (0..<(512 * 512)).map { BFloat16.bits(from: Float($0 % 97 + 1) / 1000) }
  for tensor in tensors { try bits.withUnsafeBytes { try writer.write(tensorNamed: tensor.name, bytes: $0) } }
  try writer.commit()
  return directory
}

@Suite("Inputs changed while read") struct InputChangeTests {
  @Test("a shard truncated after it was mapped fails the conversion naming it; no temporary file, no signal", arguments: [
    ConversionTarget.cast(.float32), ConversionTarget.fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))),
  ])
  func truncatedDuringConversion(_ target: ConversionTarget) throws {
    let input = try writeInput("truncated-input-\(target)".filter { $0.isLetter || $0.isNumber || $0 == "-" })
    let path = FileSystem.join(input, "model.safetensors")
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target, selection: TensorSelection(includes: [Glob("*")]))
    let output = try scratch("truncated-output")
    let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
    defer { lock.release() }
    // Drop this process's pages of the mapping, then cut the file to its header and a few rows.
    checkpoint.files[0].mapping.advise(.dontNeed)
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.truncate(to: 64 << 10)
    descriptor.close()

    let runner = ConversionRunner(plan: plan, checkpoint: checkpoint, output: output, chunkElements: 1 << 14, workerCount: 2)
    do {
      _ = try runner.run(resume: false, commandLine: ["test"]) { _ in }
      Issue.record("a conversion of a truncated input must fail")
    } catch {
      #expect("\(error)".contains(path) && "\(error)".contains("truncated"), "\(error)")
    }
    let left = try FileSystem.contents(of: output)
    #expect(!left.contains { $0.hasSuffix(".smelt-tmp") || $0.hasSuffix(".safetensors") || $0 == "smelt-manifest.json" }, "\(left)")
  }

  @Test("a shard rewritten in place after it was mapped fails the conversion before commit")
  func rewrittenDuringConversion() throws {
    let input = try writeInput("rewritten-input")
    let path = FileSystem.join(input, "model.safetensors")
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: .cast(.float32), selection: TensorSelection(includes: [Glob("*")]))
    let output = try scratch("rewritten-output")
    let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: false)
    defer { lock.release() }
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.write([0x55], at: 4096)
    var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
    _ = futimens(descriptor.rawValue, &times)
    descriptor.close()
    #expect(throws: SystemError.self) {
      _ = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
    }
    #expect(!(try FileSystem.contents(of: output)).contains { $0.hasSuffix(".safetensors") })
  }

  @Test("verify --deep of a file truncated while scanned reports it instead of scanning zeros")
  func truncatedDuringVerify() throws {
    let input = try writeInput("truncated-verify")
    let path = FileSystem.join(input, "model.safetensors")
    let file = try SafeTensorsFile(path: path)
    file.mapping.advise(.dontNeed)
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.truncate(to: 16 << 10)
    descriptor.close()
    let findings = Verification.scanValues(file, name: "model.safetensors", tensorNames: [])
    #expect(findings.contains { $0.code == .unreadableFile && $0.message.contains("truncated") }, "\(findings)")
  }
}

// Issue 15 item 3: `--resume` mixed outputs of different options (`--search` and the rule runs' scale format
// were not in the plan fingerprint) and of inputs rewritten between the kill and the resume.
@Suite("Resume fingerprint") struct ResumeFingerprintTests {
  private func fingerprint(
    _ input: String, _ target: ConversionTarget, selection: TensorSelection = TensorSelection(),
    maxShardByteCount: Int = OutputSharding.defaultMaxShardByteCount, compressedTensors: Bool = false, search: Bool = false
  ) throws -> String {
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(
      checkpoint: checkpoint, target: target, selection: selection, maxShardByteCount: maxShardByteCount,
      compressedTensorsNaming: compressedTensors, search: search)
    return ConversionRunner(plan: plan, checkpoint: checkpoint, output: "/nonexistent").fingerprint()
  }

  @Test("each convert option that changes a byte gives its own fingerprint")
  func everyOption() throws {
    let input = try writeTinyCheckpoint("fingerprint-every-option")
    func target(_ name: String, blockShape: (Int, Int) = (128, 128), ue8m0: Bool = false, groupSize: Int? = nil, bits: Int = 4) throws
      -> ConversionTarget
    {
      try #require(ConversionTarget.parse(name, blockShape: blockShape, ue8m0: ue8m0, groupSize: groupSize, bits: bits))
    }
    let fp8 = try target("fp8-block")
    let narrowOnes = TensorSelection(excludes: ["*.down_proj.weight", "*.q_b_proj.weight", "*.kv_b_proj.weight"].map(Glob.init))
    let variants: [(String, String)] = [
      ("--to fp8-block", try fingerprint(input, fp8)),
      ("--block-size 1x128", try fingerprint(input, target("fp8-block", blockShape: (1, 128)))),
      ("--scale-format ue8m0", try fingerprint(input, target("fp8-block", ue8m0: true))),
      ("--compressed-tensors", try fingerprint(input, fp8, compressedTensors: true)),
      ("--exclude", try fingerprint(input, fp8, selection: TensorSelection(excludes: [Glob("*.o_proj.weight")]))),
      ("--include", try fingerprint(input, fp8, selection: TensorSelection(includes: [Glob("lm_head.weight")]))),
      ("--max-shard-size", try fingerprint(input, fp8, maxShardByteCount: 4096)),
      ("--to bf16", try fingerprint(input, .cast(.bfloat16))),
      ("--to f32", try fingerprint(input, .cast(.float32))),
      ("--to int4-g128 --group-size 32", try fingerprint(input, target("int4-g32"))),
      // (Group 64 only divides the 64-column weights: the 32-column ones are left out of both sides.)
      ("--group-size 32 --exclude", try fingerprint(input, target("int4-g32"), selection: narrowOnes)),
      ("--group-size 64 --exclude", try fingerprint(input, target("int4-g64"), selection: narrowOnes)),
      ("--to int4-asym", try fingerprint(input, target("int4-asym", groupSize: 32))),
      ("--search", try fingerprint(input, target("int4-g32"), search: true)),
      ("--to mlx-affine --group-size 32", try fingerprint(input, target("mlx-affine", groupSize: 32))),
      ("--bits 8", try fingerprint(input, target("mlx-affine", groupSize: 32, bits: 8))),
    ]
    for (i, a) in variants.enumerated() {
      for b in variants[(i + 1)...] { #expect(a.1 != b.1, "\(a.0) and \(b.0) share a fingerprint") }
    }
  }

  @Test("every byte-changing option changes the fingerprint: --search, --scale-format in rule runs")
  func options() throws {
    let input = try writeTinyCheckpoint("fingerprint-options")
    let int4 = try #require(ConversionTarget.parse("int4-g32"))
    #expect(try fingerprint(input, int4) == fingerprint(input, int4), "stable")
    #expect(try fingerprint(input, int4) != fingerprint(input, int4, search: true), "--search")
    func ruleRun(ue8m0: Bool) throws -> ConversionTarget {
      let defaults = ConversionRecipe.SchemeDefaults(ue8m0: ue8m0)
      return .mixed(ConversionRecipe(rules: [try ConversionRecipe.parseRule("*=fp8-block", defaults: defaults)], fallback: .keep))
    }
    #expect(try fingerprint(input, ruleRun(ue8m0: false)) != fingerprint(input, ruleRun(ue8m0: true)), "--scale-format ue8m0 in a rule run")
  }

  @Test("an input rewritten in place (same size) or re-headered changes the fingerprint")
  func inputs() throws {
    let input = try writeInput("fingerprint-inputs")
    let path = FileSystem.join(input, "model.safetensors")
    let before = try fingerprint(input, .cast(.float32))
    let descriptor = try FileDescriptor.open(path, .readWrite)
    try descriptor.write([0x42], at: 1 << 19)
    var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 5), timespec(tv_sec: 1_000_000_000, tv_nsec: 5)]
    _ = futimens(descriptor.rawValue, &times)
    let rewritten = try fingerprint(input, .cast(.float32))
    #expect(rewritten != before, "same size, new modification time")
    // A header edit that keeps the size and the time (padding space -> tab): the header hash sees it.
    var lengthBytes = [UInt8](repeating: 0, count: 8)
    try lengthBytes.withUnsafeMutableBytes { try descriptor.read(into: $0, at: 0) }
    let headerLength = lengthBytes.reversed().reduce(0) { $0 << 8 | Int($1) }
    var last = [UInt8](repeating: 0, count: 1)
    try last.withUnsafeMutableBytes { try descriptor.read(into: $0, at: 8 + headerLength - 1) }
    if last[0] == 0x20 {
      try descriptor.write([0x09], at: 8 + headerLength - 1)
      _ = futimens(descriptor.rawValue, &times)
      #expect(try fingerprint(input, .cast(.float32)) != rewritten, "header bytes changed")
    }
    descriptor.close()
  }

  /// A journal of `target`'s plan over `input`, as an interrupted run into `output` leaves it.
  private func interruptedRun(_ input: String, _ target: ConversionTarget, into output: String, search: Bool = false) throws {
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target, search: search)
    let runner = ConversionRunner(plan: plan, checkpoint: checkpoint, output: output)
    ResumeJournal(
      directory: output, planFingerprint: runner.optionsFingerprint(), inputStamps: checkpoint.inputStamps(),
      commandLine: ["smelt", "convert", "IN", "OUT", "--to", "\(target)"]
    ).reset()
  }

  private func resume(_ input: String, _ target: ConversionTarget, into output: String, search: Bool = false) throws {
    let checkpoint = try Checkpoint.open(input)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target, search: search)
    let lock = try OutputDirectory.prepare(output, input: input, force: false, resume: true)
    defer { lock.release() }
    _ = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: true, commandLine: ["test"]) { _ in }
  }

  @Test("--resume refuses an interrupted run of other options, naming its command; the same options resume")
  func resumeWithOtherOptions() throws {
    let input = try writeTinyCheckpoint("resume-options")
    let int4 = try #require(ConversionTarget.parse("int4-g32"))
    let output = try scratch("resume-options-out")
    try FileSystem.createDirectory(output)
    try interruptedRun(input, int4, into: output)
    do {
      try resume(input, int4, into: output, search: true)
      Issue.record("a --search resume of a round-to-nearest run must be refused")
    } catch {
      #expect("\(error)".contains("other options") && "\(error)".contains("--force") && "\(error)".contains("smelt convert IN OUT"), "\(error)")
    }
    #expect(throws: ConversionError.self) { try resume(input, .cast(.float32), into: output) }
    try resume(input, int4, into: output)
    #expect(FileSystem.exists(FileSystem.join(output, "smelt-manifest.json")))
  }

  @Test("--resume refuses inputs rewritten since the interrupted run, even with their old modification time")
  func resumeWithRewrittenInput() throws {
    let input = try writeInput("resume-rewritten")
    let path = FileSystem.join(input, "model.safetensors")
    let output = try scratch("resume-rewritten-out")
    try FileSystem.createDirectory(output)
    let descriptor = try FileDescriptor.open(path, .readWrite)
    defer { descriptor.close() }
    var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 5), timespec(tv_sec: 1_000_000_000, tv_nsec: 5)]
    _ = futimens(descriptor.rawValue, &times)
    try interruptedRun(input, .cast(.float32), into: output)
    // One weight byte changed in place, the modification time put back (as `cp -p` or `touch -r` would).
    try descriptor.write([0x42], at: 1 << 19)
    _ = futimens(descriptor.rawValue, &times)
    do {
      try resume(input, .cast(.float32), into: output)
      Issue.record("a resume over a rewritten input must be refused")
    } catch {
      #expect("\(error)".contains("changed since the interrupted run") && "\(error)".contains("model.safetensors"), "\(error)")
    }
  }
}

// Issue 15 item 4: non-finite results went unreported (`non_finite_values: 0` for 16,249 infinities), and
// zero or negative scales passed convert while verify --deep called the same input corrupt.
@Suite("Non-finite results and bad scales") struct NonFiniteResultTests {
  /// The tiny checkpoint converted to FP8 blocks, with the first `weight_scale_inv` of one weight set to
  /// `scale`; returns the directory and the scale's name.
  private func fp8Input(_ name: String, scale: Float) throws -> (String, String) {
    let source = try writeTinyCheckpoint("\(name)-bf16")
    let (fp8, _) = try run(source, .fp8(FP8Layout(granularity: .block(rows: 128, columns: 128))), into: name)
    let scaleName = try #require(fp8.tensorNames.first { $0.hasSuffix("weight_scale_inv") })
    let location = try #require(fp8.location(of: scaleName))
    let offset = fp8.files[location.fileIndex].header.fileRange(of: location.entry).lowerBound
    let descriptor = try FileDescriptor.open(fp8.files[location.fileIndex].path, .readWrite)
    defer { descriptor.close() }
    try withUnsafeBytes(of: scale.bitPattern.littleEndian) { try descriptor.write($0, at: offset) }
    return (fp8.directory, scaleName)
  }

  @Test("a huge scale's infinities are counted in the BF16, F32 and F16 casts")
  func hugeScale() throws {
    let (input, scale) = try fp8Input("huge-scale", scale: 3e38)
    let weight = String(scale.dropLast("_scale_inv".count))
    for dtype in [DType.bfloat16, .float32, .float16] {
      let (_, report) = try run(input, .cast(dtype), into: "huge-scale-\(dtype.rawValue)")
      let tensor = try #require(report.tensors.first { $0.name == weight })
      #expect(tensor.nonFiniteCount > 0, "\(dtype): \(tensor)")
    }
  }

  @Test("values too large for F16 become infinities, and are counted")
  func f16Overflow() throws {
    let directory = try scratch("f16-overflow")
    try FileSystem.createDirectory(directory)
    let tensor = PlannedTensor(name: "model.layers.0.mlp.up_proj.weight", dtype: .float32, shape: [4, 8])
    let writer = try SafeTensorsFileWriter(path: FileSystem.join(directory, "model.safetensors"), layout: SafeTensorsLayout(tensors: [tensor]))
    var values = [Float](repeating: 1, count: 32)
    values[5] = 1e6
    values[9] = -7e4
    try values.withUnsafeBytes { try writer.write(tensorNamed: tensor.name, bytes: $0) }
    try writer.commit()
    let (_, report) = try run(directory, .cast(.float16), into: "f16-overflow-out", selection: TensorSelection(includes: [Glob("*")]))
    let result = try #require(report.tensors.first)
    #expect(result.nonFiniteCount == 2 && result.firstNonFiniteIndex == 5, "\(result)")
  }

  @Test("unscaled FP8 casts count the values they saturate, and a huge scale's infinities")
  func fp8Saturation() throws {
    let directory = try scratch("fp8-saturation")
    try FileSystem.createDirectory(directory)
    let tensor = PlannedTensor(name: "model.layers.0.mlp.up_proj.weight", dtype: .float32, shape: [4, 8])
    let writer = try SafeTensorsFileWriter(path: FileSystem.join(directory, "model.safetensors"), layout: SafeTensorsLayout(tensors: [tensor]))
    var values = [Float](repeating: 1, count: 32)
    values[3] = 1000
    values[7] = -5e4
    values[11] = 1e6
    values[12] = 448  // the largest E4M3 value itself is not saturated
    values[20] = .infinity  // saturated to 448 too, but counted as what it is: non-finite
    try values.withUnsafeBytes { try writer.write(tensorNamed: tensor.name, bytes: $0) }
    try writer.commit()
    let all = TensorSelection(includes: [Glob("*")])
    let (_, e4m3) = try run(directory, .unscaledFP8(.float8E4M3FN), into: "fp8-saturation-e4m3", selection: all)
    let e4 = try #require(e4m3.tensors.first)
    #expect(e4.saturatedCount == 3 && e4.firstSaturatedIndex == 3 && e4.nonFiniteCount == 1 && e4.firstNonFiniteIndex == 20, "\(e4)")
    let (_, e5m2) = try run(directory, .unscaledFP8(.float8E5M2), into: "fp8-saturation-e5m2", selection: all)
    let e5 = try #require(e5m2.tensors.first)
    #expect(e5.saturatedCount == 1 && e5.firstSaturatedIndex == 11, "\(e5)")

    let (input, scale) = try fp8Input("huge-scale-f8", scale: 3e38)
    let weight = String(scale.dropLast("_scale_inv".count))
    // `--include` makes the FP8 weight itself go through the cast (dequantized, then cast to E4M3).
    let (_, report) = try run(input, .unscaledFP8(.float8E4M3FN), into: "huge-scale-f8-out", selection: TensorSelection(includes: [Glob(weight)]))
    let result = try #require(report.tensors.first { $0.name == weight })
    #expect(result.nonFiniteCount > 0, "the infinities saturated to ±448 are still reported: \(result)")
  }

  @Test("zero, negative-zero and negative scales are refused by convert, as verify --deep refuses them", arguments: [
    Float(0), -Float(0), Float(-0.5),
  ])
  func nonPositiveScales(_ value: Float) throws {
    let (input, scale) = try fp8Input("bad-scale-\(value.bitPattern)", scale: value)
    #expect(!Verification.verify(directory: input, deep: true).isClean, "verify --deep calls the input corrupt")
    for target in [ConversionTarget.cast(.bfloat16), .cast(.float32)] {
      do {
        _ = try run(input, target, into: "bad-scale-out-\(value.bitPattern)")
        Issue.record("convert must refuse a \(value) scale")
      } catch {
        #expect("\(error)".contains(scale) && "\(error)".contains("positive"), "\(error)")
      }
    }
  }
}
