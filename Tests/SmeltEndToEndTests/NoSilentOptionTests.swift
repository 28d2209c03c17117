// Issue 14, "no silent option": an option or glob that would do nothing, or override another, is refused with
// a message naming it; the ecosystem's own names for targets and sizes are accepted.
import Checkpoint
import JSON
import Pipeline
import SafeTensors
import Sharding
import SystemIO
import TestSupport
import Testing

@Suite("No silent option") struct NoSilentOptionTests {
  static let sample = samplePath("tiny-deepseek-v3")

  /// `smelt convert SAMPLE OUT --dry-run` with `arguments` (nothing is written).
  func dryRun(_ arguments: [String], sample: String = Self.sample) -> (status: Int32, stdout: String, stderr: String) {
    runSmelt(["convert", sample, "/nonexistent/out", "--dry-run"] + arguments)
  }

  @Test(
    "an option that does not refine the target is a usage error naming the option and the target",
    arguments: [
      (["--to", "int4-g128", "--bits", "8"], "--bits", "int4-g128"),
      (["--to", "fp8-block", "--bits", "8"], "--bits", "fp8-block"),
      (["--to", "mxfp4", "--group-size", "64"], "--group-size", "mxfp4"),
      (["--to", "nvfp4", "--group-size", "32"], "--group-size", "nvfp4"),
      (["--to", "int4-g128", "--group-size", "64"], "--group-size", "int4-g128"),
      (["--to", "int4-g64", "--group-size", "128"], "--group-size", "int4-g64"),
      (["--to", "bf16", "--block-size", "1x128"], "--block-size", "bf16"),
      (["--to", "int4-asym", "--scale-format", "ue8m0"], "--scale-format", "int4-asym"),
      (["--to", "fp8-channel", "--compressed-tensors"], "--compressed-tensors", "fp8-channel"),
      (["--to", "gptq", "--search"], "--search", "gptq"),
      (["--to", "bf16", "--search"], "--search", "bf16"),
      (["--rule", "*.mlp.experts.*=int4-g128", "--bits", "8"], "--bits", "int4-g128"),
      (["--to", "gguf-q8_0", "--bits", "8"], "--bits", "GGUF"),
      (["--to", "gguf-q8_0", "--force-layout"], "--force-layout", "GGUF"),
      (["--to", "gguf-q8_0", "--skip-incompatible"], "--skip-incompatible", "GGUF"),
    ])
  func inapplicableOption(_ arguments: [String], option: String, target: String) {
    let result = dryRun(arguments)
    #expect(result.status == 64, "\(arguments): \(result.stderr)")
    #expect(result.stderr.contains(option) && result.stderr.contains(target), "\(arguments): \(result.stderr)")
  }

  @Test(
    "options that refine the target (or one of the recipe's schemes) are accepted",
    arguments: [
      ["--to", "mlx-affine", "--bits", "8", "--group-size", "32"],
      ["--to", "int4-asym", "--group-size", "64"],
      ["--to", "gptq", "--group-size", "64"],
      ["--to", "fp8-block", "--block-size", "1x128", "--scale-format", "ue8m0", "--compressed-tensors"],
      ["--to", "fp8-channel", "--scale-format", "ue8m0"],
      ["--to", "int4-g64", "--search"],
      ["--to", "int4-g64", "--rule", "*.self_attn.*=int4-asym", "--group-size", "64"],
    ])
  func applicableOption(_ arguments: [String]) {
    let result = dryRun(arguments)
    #expect(result.status == 0, "\(arguments): \(result.stderr)")
  }

  @Test("a fixed-group scheme name in a recipe refuses a different :group= (int4-g128:group=64)")
  func fixedGroupInRecipe() {
    let result = dryRun(["--rule", "*.mlp.experts.*=int4-g128:group=64"])
    #expect(result.status == 64, "\(result.stderr)")
    #expect(result.stderr.contains("int4-g128") && result.stderr.contains("int4-g64"), "\(result.stderr)")
  }

  @Test(
    "the ecosystem's scheme names are --to aliases of the existing targets",
    arguments: [
      ("W4A16", "int4-g128"), ("W4A16_ASYM", "int4-asym"), ("FP8_BLOCK", "fp8-block"), ("NVFP4", "nvfp4"),
      ("MXFP4", "mxfp4"), ("BF16", "bf16"),
    ])
  func ecosystemAliases(_ alias: String, target: String) throws {
    // (The sample's 64- and 192-column weights do not take group 128: kept, as mlx-lm keeps them.)
    let skip = target.hasPrefix("int4") ? ["--skip-incompatible"] : []
    let aliased = dryRun(["--to", alias, "--json"] + skip)
    let named = dryRun(["--to", target, "--json"] + skip)
    #expect(aliased.status == 0, "\(alias): \(aliased.stderr)")
    #expect(!aliased.stdout.isEmpty && aliased.stdout == named.stdout, "\(alias) plans differently from \(target)")
    let help = runSmelt(["convert", "--help"])
    #expect(help.stdout.contains("\(alias) = \(target)"), "help does not document \(alias)")
  }

  // MARK: item 5: every incompatible tensor at once, or kept with --skip-incompatible

  @Test("a group that does not divide some weights names every one of them in one run", arguments: ["int4-g128", "int4-asym", "gptq"])
  func allIncompatibleTensorsListed(_ target: String) {
    let result = dryRun(["--to", target])
    #expect(result.status == 1, "\(result.stderr)")
    let listed = result.stderr.split(separator: "\n").filter { $0.contains("is not a multiple of the group size 128") }
    // q_b_proj (192 columns) in 4 layers, every down_proj (64 columns): far more than one per run.
    #expect(listed.count > 40, "\(result.stderr)")
    for name in ["model.layers.0.self_attn.q_b_proj.weight", "model.layers.3.mlp.experts.15.down_proj.weight"] {
      #expect(result.stderr.contains(name), "\(name) not listed")
    }
    #expect(result.stderr.contains("--skip-incompatible"), "the fix is not named")
  }

  @Test(
    "--skip-incompatible keeps those weights at source precision, one line each, and the config leaves them unquantized",
    arguments: [("int4-g128", "ignore"), ("int4-asym", "ignore"), ("gptq", "dynamic")])
  func skipIncompatibleKeepsThem(_ target: String, configKey: String) throws {
    let scratch = ScratchDirectory("skip-incompatible")
    defer { scratch.remove() }
    let output = scratch.join("out")
    let result = runSmelt(["convert", Self.sample, output, "--to", target, "--skip-incompatible"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stderr.contains("skipped 'model.layers.0.self_attn.q_b_proj.weight'"), "\(result.stderr)")
    let out = try Checkpoint.open(output)
    let source = try Checkpoint.open(Self.sample)
    let kept = "model.layers.2.mlp.experts.3.down_proj.weight"
    #expect(try out.tensor(kept).copyBytes() == source.tensor(kept).copyBytes(), "\(kept) is not kept as it was")
    let config = try #require(out.config?.quantizationConfig?.raw[configKey], "\(configKey)")
    let text = JSONWriter().string(config)
    #expect(text.contains("q_b_proj") && text.contains("down_proj"), "\(configKey): \(text)")
  }

  @Test("--skip-incompatible is refused where no group applies (fp8-block)")
  func skipIncompatibleOnlyForGroupTargets() {
    let result = dryRun(["--to", "fp8-block", "--skip-incompatible"])
    #expect(result.status == 64 && result.stderr.contains("--skip-incompatible"), "\(result.stderr)")
  }

  // MARK: globs that match nothing

  @Test(
    "a --rule, --include or --exclude glob that matches no tensor is an error naming it",
    arguments: [
      (["--to", "fp8-block", "--exclude", "*.o_projj.weight"], "--exclude '*.o_projj.weight'"),
      (["--to", "fp8-block", "--include", "lm_heads.weight"], "--include 'lm_heads.weight'"),
      (["--rule", "model.layer.*.mlp.experts.*=int4-g64", "--rule", "*.self_attn.*=fp8-block"], "--rule 'model.layer.*.mlp.experts.*'"),
    ])
  func unmatchedGlob(_ arguments: [String], named: String) {
    let refused = dryRun(arguments)
    #expect(refused.status == 64, "\(arguments): \(refused.stderr)")
    #expect(refused.stderr.contains(named) && refused.stderr.contains("--allow-unmatched"), "\(refused.stderr)")
    let allowed = dryRun(arguments + ["--allow-unmatched"])
    #expect(allowed.status == 0, "\(allowed.stderr)")
    #expect(allowed.stderr.contains("warning") && allowed.stderr.contains(named), "\(allowed.stderr)")
  }

  @Test("a GGUF --rule glob that matches no GGUF tensor name is refused, naming it; a matching one is accepted")
  func unmatchedGGUFRule() {
    let gguf = ["convert", Self.sample, "/nonexistent/out.gguf", "--to", "gguf-q8_0", "--dry-run"]
    let refused = runSmelt(gguf + ["--rule", "blk.*.attn_q.weight=q4_0"])
    #expect(refused.status == 64 && refused.stderr.contains("--rule 'blk.*.attn_q.weight'"), "\(refused.stderr)")
    #expect(runSmelt(gguf + ["--rule", "blk.*.attn_q.weight=q4_0", "--allow-unmatched"]).status == 0)
    let matched = runSmelt(gguf + ["--rule", "blk.*.ffn_down_exps.weight=q4_0"])
    #expect(matched.status == 0, "\(matched.stderr)")
  }

  @Test("a GGUF --recipe sets the types its rules name, after --rule; a recipe for another preset or type is refused")
  func ggufRecipe() throws {
    let directory = try TestPaths.scratchDirectory("gguf-recipe")
    func recipe(_ text: String) throws -> String {
      let path = directory + "/recipe-\(text.count).json"
      try FileSystem.writeFileAtomically(Array(text.utf8), to: path)
      return path
    }
    let good = try recipe(#"{"rules": [{"match": "blk.*.ffn_*_exps.weight", "scheme": "q4_0"}, {"match": "blk.1.*", "scheme": "q5_0"}], "default": "gguf-q8_0"}"#)
    let gguf = ["convert", Self.sample, "/nonexistent/out.gguf", "--to", "gguf-q8_0", "--dry-run", "--json"]
    let planned = runSmelt(gguf + ["--recipe", good, "--rule", "blk.1.ffn_down_exps.weight=q8_0"])
    #expect(planned.status == 0, "\(planned.stderr)")
    let tensors = try #require(try JSONParser.parse(planned.stdout)["tensors"]?.arrayValue)
    func type(_ name: String) -> String? { tensors.first { $0["name"]?.stringValue == name }?["type"]?.stringValue }
    #expect(type("blk.2.ffn_up_exps.weight") == "q4_0")
    #expect(type("blk.1.ffn_down_exps.weight") == "q8_0")  // the --rule comes first
    #expect(type("blk.1.attn_kv_a_mqa.weight") == "q5_0")
    #expect(type("blk.0.ffn_up.weight") == "q8_0")  // no rule: the preset's choice

    let otherPreset = runSmelt(gguf + ["--recipe", try recipe(#"{"rules": [], "default": "gguf-q4_k_m"}"#)])
    #expect(otherPreset.status == 64 && otherPreset.stderr.contains("gguf-q4_k_m"), "\(otherPreset.stderr)")
    let badType = runSmelt(gguf + ["--recipe", try recipe(#"{"rules": [{"match": "blk.*", "scheme": "int4-g128"}]}"#)])
    #expect(badType.status == 64 && badType.stderr.contains("'int4-g128' is not a ggml type"), "\(badType.stderr)")
    let unmatched = runSmelt(gguf + ["--recipe", try recipe(#"{"rules": [{"match": "blk.*.attn_q.weight", "scheme": "q4_0"}]}"#)])
    #expect(unmatched.status == 64 && unmatched.stderr.contains("--recipe rule 'blk.*.attn_q.weight'"), "\(unmatched.stderr)")
  }

  @Test("globs match by tensor name or module path: '*.o_proj' and 'lm_head.weight' are accepted")
  func matchedGlobs() {
    let result = dryRun(["--to", "fp8-block", "--exclude", "*.o_proj", "--include", "lm_head.weight", "--rule", "*.mlp.experts.*=fp8-block"])
    #expect(result.status == 0, "\(result.stderr)")
  }

  // MARK: a recipe's keep keeps, or is refused

  @Test("a compressed-tensors recipe refuses to 'keep' FP8 weights by dequantizing them; an explicit bf16 default is accepted")
  func recipeKeepOfFP8IsNotDequantized() {
    let fp8 = samplePath("tiny-deepseek-v3-fp8")
    let experts = ["--rule", "*.mlp.experts.*=int4-g64"]
    for extra in [[], ["--rule", "model.layers.0.*=keep"]] {
      let refused = dryRun(experts + extra, sample: fp8)
      #expect(refused.status == 1, "\(extra): \(refused.stderr)")
      #expect(refused.stderr.contains("keep") && refused.stderr.contains("fp8-block") && refused.stderr.contains("dequantize"), "\(refused.stderr)")
    }
    #expect(dryRun(experts + ["--to", "bf16"], sample: fp8).status == 0)
    #expect(dryRun(experts + ["--rule", "*=fp8-block"], sample: fp8).status == 0)
    // A BF16 source has nothing to dequantize: keep stays keep.
    #expect(dryRun(experts).status == 0)
  }

  // MARK: sizes as people write them

  @Test("bare decimal size units (2G, 500M) are accepted by --max-shard-size and by --device capacities")
  func bareSizeUnits() throws {
    let result = dryRun(["--to", "bf16", "--max-shard-size", "1M", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let files = try JSONParser.parse(result.stdout)["files"]?.arrayValue?.count ?? 0
    #expect(files >= 2, "1M = 10^6 bytes splits the 6.5 MB sample")
    #expect(try ShardDevice(parsing: "gpu0:2G").capacityByteCount == 2_000_000_000)
    #expect(try ShardDevice(parsing: "cpu:500M").capacityByteCount == 500_000_000)
    #expect(try ShardDevice(parsing: "cpu:1.5GiB").capacityByteCount == 1_610_612_736)
  }

  // MARK: layouts no consumer loads for this architecture

  @Test("--to mxfp4-gpt-oss on a DeepSeek model is refused unless --force-layout; on gpt-oss it is accepted")
  func gptOssLayoutNeedsGptOss() {
    let refused = dryRun(["--to", "mxfp4-gpt-oss"])
    #expect(refused.status == 64, "\(refused.stderr)")
    #expect(refused.stderr.contains("DeepseekV3ForCausalLM") && refused.stderr.contains("--force-layout"), "\(refused.stderr)")
    let inRecipe = dryRun(["--rule", "*.mlp.experts.*=mxfp4-gpt-oss"])
    #expect(inRecipe.status == 64, "\(inRecipe.stderr)")
    #expect(dryRun(["--to", "mxfp4-gpt-oss", "--force-layout"]).status == 0)
    #expect(dryRun(["--to", "mxfp4-gpt-oss"], sample: samplePath("tiny-gpt-oss")).status == 0)
  }

  // MARK: free space before writing

  @Test("the free-space check refuses a plan larger than the file system's free bytes, giving both figures")
  func freeSpaceCheck() throws {
    #expect {
      try OutputDirectory.checkFreeSpace(for: "/tmp/out", plannedByteCount: 5_490_000, availableByteCount: 1_200_000)
    } throws: { error in
      let text = "\(error)"
      return text.contains("5.49 MB") && text.contains("5490000 bytes") && text.contains("1.2 MB") && text.contains("1200000 bytes")
    }
    try OutputDirectory.checkFreeSpace(for: "/tmp/out", plannedByteCount: 1_000, availableByteCount: 1_000)
    // The real statvfs of the nearest existing ancestor: no file system has Int.max bytes free.
    #expect(try FileSystem.availableByteCount(at: "/tmp") > 0)
    #expect(throws: OutputDirectory.Refusal.self) {
      try OutputDirectory.checkFreeSpace(for: "/tmp/smelt-no-such-dir/deeper/out", plannedByteCount: Int.max)
    }
  }

  // MARK: --resume on a finished output

  @Test("--resume on a finished output reuses every file that still hashes as recorded, rewrites a changed one, refuses other options")
  func resumeSkipsCompleteFiles() throws {
    let scratch = ScratchDirectory("resume-complete")
    defer { scratch.remove() }
    let output = scratch.join("out")
    let options = ["--to", "fp8-block", "--max-shard-size", "1MB"]
    let first = runSmelt(["convert", Self.sample, output] + options)
    try #require(first.status == 0, "\(first.stderr)")
    let before = Fixture.hashes(output)
    let weights = before.keys.filter { $0.hasSuffix(".safetensors") }.sorted()
    try #require(weights.count >= 3)
    let again = runSmelt(["convert", Self.sample, output, "--resume"] + options)
    #expect(again.status == 0, "\(again.stderr)")
    #expect(again.stderr.contains("resumed: reused \(weights.count) completed file(s)"), "\(again.stderr)")
    #expect(Fixture.hashes(output) == before, "a resume of a finished output changed it")
    // A weight file changed since is rewritten (it no longer hashes as recorded); the others are reused.
    let damaged = FileSystem.join(output, weights[1])
    var bytes = try FileSystem.readFile(damaged)
    bytes[bytes.count - 1] ^= 0xFF
    try FileSystem.writeFileAtomically(bytes, to: damaged)
    let repaired = runSmelt(["convert", Self.sample, output, "--resume"] + options)
    #expect(repaired.status == 0, "\(repaired.stderr)")
    #expect(repaired.stderr.contains("resumed: reused \(weights.count - 1) completed file(s)"), "\(repaired.stderr)")
    #expect(Fixture.hashes(output) == before)
    // Other options: refused, the output untouched.
    let other = runSmelt(["convert", Self.sample, output, "--resume", "--to", "bf16"])
    #expect(other.status != 0 && other.stderr.contains("other options"), "\(other.stderr)")
    #expect(Fixture.hashes(output) == before)
    // verify accepts the finished output (the completed run's journal is not an interrupted run's).
    let verified = runSmelt(["verify", output])
    #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
  }

  // MARK: one --json convention

  @Test("--json-file PATH writes the document --json prints, for inspect, convert, shard and verify, and stdout stays empty")
  func jsonFileConvention() throws {
    let scratch = ScratchDirectory("json-file")
    defer { scratch.remove() }
    let converted = scratch.join("converted")
    try #require(runSmelt(["convert", Self.sample, converted, "--to", "fp8-block", "-q"]).status == 0)
    let commands: [[String]] = [
      ["inspect", Self.sample],
      ["convert", Self.sample, scratch.join("plan"), "--to", "bf16", "--dry-run"],
      ["shard", Self.sample, scratch.join("shard"), "--devices", "2", "--dry-run"],
      ["verify", converted],
    ]
    for (index, command) in commands.enumerated() {
      let printed = runSmelt(command + ["--json"])
      let path = scratch.join("report-\(index).json")
      let written = runSmelt(command + ["--json-file", path])
      #expect(printed.status == written.status, "\(command): \(written.stderr)")
      #expect(written.stdout.isEmpty, "\(command) printed to stdout with --json-file")
      let text = String(decoding: try FileSystem.readFile(path), as: UTF8.self)
      #expect(!text.isEmpty && text == printed.stdout, "\(command)")
      #expect((try? JSONParser.parse(text)) != nil, "\(command): not JSON")
    }
  }
}
