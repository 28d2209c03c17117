// libFuzzer entry point for Smelt's parsers of untrusted bytes. Built by `scripts/fuzz`, which compiles this
// file together with the sources of the library modules the parsers live in (SystemIO, CMath, TensorCore, JSON,
// SafeTensors, Quantization, Checkpoint, Pipeline, WeightFormats, GGML, GGUF, GGUFModel) into one module, so no `import` of those modules appears
// here.
//
// One binary, one target per parser, chosen with the environment variable SMELT_FUZZ_TARGET:
//
// | target   | parser                                                                        |
// |----------|-------------------------------------------------------------------------------|
// | header   | safetensors headers (fast HeaderDecoder vs strict path), the writer's re-layout |
// | index    | `model.safetensors.index.json` (fast IndexDecoder vs the strict parse)       |
// | config   | `config.json` (ModelConfig)                                                   |
// | recipe   | `convert --recipe FILE` (ConversionRecipe) and `--rule` texts                 |
// | manifest | `smelt-manifest.json` with its self-check, and shard's `manifest.json`         |
// | gguf     | the GGUF parser (input = a whole file), its re-layout, deepseek2's mapping back |
// | all      | every one of the above on the same input (the default), plus the value scanner |
//
// Any trap (overflow, out-of-bounds, force unwrap), any address-sanitizer report or a hang is a finding. On
// top of "never crash", accepted inputs must satisfy the properties the rest of Smelt relies on (checked with
// `fuzzCheck`, which traps on violation).

#if canImport(Glibc)
  import Glibc
#endif

private func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
  if !condition() { fatalError("fuzz property violated: \(message())") }
}

/// The parsers one run exercises, read once from SMELT_FUZZ_TARGET.
private enum FuzzTarget: String, CaseIterable {
  case header, index, config, recipe, manifest, gguf, all

  static let selected: FuzzTarget = {
    guard let raw = getenv("SMELT_FUZZ_TARGET") else { return .all }
    let name = String(cString: raw)
    guard let target = FuzzTarget(rawValue: name) else {
      fatalError("SMELT_FUZZ_TARGET='\(name)': expected one of \(FuzzTarget.allCases.map(\.rawValue))")
    }
    return target
  }()

  func includes(_ target: FuzzTarget) -> Bool { self == .all || self == target }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  let bytes = UnsafeRawBufferPointer(start: data.map(UnsafeRawPointer.init), count: size)
  let target = FuzzTarget.selected
  let array = Array(bytes)
  if target.includes(.header) { fuzzSafeTensorsHeader(bytes) }
  if target.includes(.index) { fuzzIndex(array) }
  if target.includes(.config) { _ = try? ModelConfig(json: array, path: "fuzz/config.json") }
  if target.includes(.recipe) { fuzzRecipe(array) }
  if target.includes(.manifest) {
    if let manifest = try? OutputManifest(json: array, path: "fuzz/smelt-manifest.json") {
      _ = manifest.selfCheckProblem(array)
      fuzzCheck(manifest.selfCheckProblem(manifest.jsonBytes()) == nil, "a written manifest passes its self-check")
    }
    _ = ShardManifestFiles(json: array)
  }
  if target.includes(.gguf) { fuzzGGUF(bytes) }
  if target == .all, let first = array.first {
    // The value scanner reads any bytes as any dtype (the first byte picks it) without trapping.
    let dtype = DType.allCases[Int(first) % DType.allCases.count]
    _ = ValueScan.nonFinite(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), dtype: dtype)
    _ = ValueScan.nonPositive(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), dtype: dtype)
  }
  return 0
}

/// A whole GGUF file: whatever the strict parser accepts lays out again at the same offsets (the writer's
/// planner agrees with the reader), and the deepseek2 mapping back to Hugging Face names and config.json
/// either succeeds or throws.
private func fuzzGGUF(_ bytes: UnsafeRawBufferPointer) {
  guard case .success(let header) = Result(catching: { () throws(GGUFError) in try GGUFParser.parse(bytes) }) else { return }
  if let layout = try? GGUFLayout(metadata: header.metadata, tensors: header.tensors) {
    fuzzCheck(layout.tensors.map(\.offset) == header.tensors.map(\.offset), "a parsed GGUF re-plans to its own offsets")
  }
  _ = try? DeepSeek2.storedTensors(header.tensors)
  _ = try? DeepSeek2.huggingFaceConfig(header.metadata, tensors: header.tensors)
}

private func fuzzSafeTensorsHeader(_ bytes: UnsafeRawBufferPointer) {
  // The fast decoder (HeaderDecoder) and the strict path (JSONParser, the crate's rule order) are two
  // parsers of one format: they must accept the same headers with the same result and refuse the rest
  // with the same error.
  let strict: Result<SafeTensorsHeader, SafeTensorsError>
  do { strict = .success(try SafeTensorsHeader.parse(prefix: bytes, fileByteCount: bytes.count, fastPath: false)) } catch {
    strict = .failure(error)
  }
  let header: SafeTensorsHeader
  do {
    header = try SafeTensorsHeader.parse(prefix: bytes, fileByteCount: bytes.count)
  } catch {
    // Every error must describe itself without trapping (messages format shapes, offsets, dtypes).
    _ = error.description
    _ = error.rule
    fuzzCheck(strict == .failure(error), "fast path refused with \(error), strict path: \(strict)")
    return
  }
  if case .success(let other) = strict {
    fuzzCheck(
      other.tensors == header.tensors && other.metadata == header.metadata && other.headerByteCount == header.headerByteCount,
      "the fast and strict paths accepted different headers")
  } else {
    fuzzCheck(false, "fast path accepted, strict path: \(strict)")
  }
  // Accepted: every tensor lies inside the file, in order, and its size is shape × dtype.
  var expectedBegin = 0
  for entry in header.tensors {
    fuzzCheck(entry.dataOffsets.lowerBound == expectedBegin, "tensors tile the data section")
    expectedBegin = entry.dataOffsets.upperBound
    let range = header.fileRange(of: entry)
    fuzzCheck(range.lowerBound >= 0 && range.upperBound <= bytes.count, "tensor inside the file")
    fuzzCheck(ByteCount.of(entry.dtype, shape: entry.shape) == entry.byteCount, "byte count matches shape")
    fuzzCheck(header.entry(named: entry.name) == entry, "lookup by name")
  }
  // Smelt's own writer must be able to lay out what the reader accepted, and the result must re-parse.
  let planned = header.tensors.map { PlannedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
  if let layout = try? SafeTensorsLayout(tensors: planned, metadata: header.metadata) {
    var file = layout.headerBytes
    file.append(contentsOf: repeatElement(0, count: layout.fileByteCount - layout.headerBytes.count))
    do {
      let reparsed = try SafeTensorsHeader.parse(fileBytes: file)
      fuzzCheck(reparsed.tensors.count == header.tensors.count, "written header re-parses with every tensor")
    } catch {
      fuzzCheck(false, "layout written by Smelt does not re-parse: \(error)")
    }
  }
  // Grouping weights with their scales never traps, whatever the names.
  _ = WeightGrouping.groups(of: header.tensors)
}

private func fuzzIndex(_ bytes: [UInt8]) {
  // `IndexDecoder` (the fast path) and the strict JSON-tree parse must agree: the same entries, size and
  // metadata when both accept; the fast path never accepts what the strict one refuses.
  let strict = try? CheckpointIndex(strictJSON: bytes, path: "fuzz/model.safetensors.index.json")
  let index: CheckpointIndex
  do { index = try CheckpointIndex(json: bytes, path: "fuzz/model.safetensors.index.json") } catch {
    _ = "\(error)"
    fuzzCheck(strict == nil, "the index's fast path refused what the strict parse accepts: \(error)")
    return
  }
  if let strict {
    fuzzCheck(
      strict.weightMap.elementsEqual(index.weightMap, by: { $0.tensor == $1.tensor && $0.file == $1.file })
        && strict.totalByteCount == index.totalByteCount && strict.metadata == index.metadata,
      "the index's fast and strict paths accepted different indexes")
  } else {
    fuzzCheck(false, "the index's fast path accepted what the strict parse refuses")
  }
  // Accepted: every file stays inside the checkpoint directory, and what Smelt writes parses back the same.
  for file in index.files { fuzzCheck(CheckpointIndex.isSafeRelativePath(file), "index file '\(file)' stays inside") }
  if let reparsed = try? CheckpointIndex(json: index.jsonBytes(), path: "fuzz/rewritten.json") {
    fuzzCheck(reparsed.weightMap.count == index.weightMap.count, "a written index re-parses with every entry")
  } else {
    fuzzCheck(false, "an index written by Smelt does not re-parse")
  }
}

private func fuzzRecipe(_ bytes: [UInt8]) {
  let defaults = ConversionRecipe.SchemeDefaults()
  if let recipe = try? ConversionRecipe.parse(json: bytes, path: "fuzz/recipe.json", defaults: defaults) {
    _ = try? recipe.family()
    _ = recipe.description
    _ = recipe.rule(for: "model.layers.0.mlp.experts.3.up_proj.weight", module: "model.layers.0.mlp.experts.3.up_proj")
  }
  // The same bytes as a `--rule GLOB=SCHEME` text (globs are matched against a name).
  let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
  if let rule = try? ConversionRecipe.parseRule(text, defaults: defaults) {
    _ = rule.glob.matches("model.layers.12.self_attn.q_proj.weight")
  }
}
