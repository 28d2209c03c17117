// libFuzzer entry point for Smelt's parsers of untrusted bytes. Built by `scripts/fuzz`, which compiles this
// file together with the pure sources of TensorCore, JSON, SafeTensors (header parsing and layout) and
// Checkpoint (index, config, manifest parsing, weight grouping) into one module, so no `import` of those
// modules appears here.
//
// One input is fed to every parser: the safetensors header parser (as a whole file), the index parser,
// the config.json reader, both manifest parsers (convert's, with its self-check, and shard's) and the
// `verify --deep` value scanner. Any trap (overflow, out-of-bounds, force unwrap), any
// address-sanitizer report or a hang is a finding. On top of "never crash", accepted headers must satisfy
// the properties the rest of Smelt relies on (checked with `fuzzCheck`, which traps on violation).

private func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
  if !condition() { fatalError("fuzz property violated: \(message())") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  let bytes = UnsafeRawBufferPointer(start: data.map(UnsafeRawPointer.init), count: size)
  fuzzSafeTensorsHeader(bytes)
  let array = Array(bytes)
  _ = try? CheckpointIndex(json: array, path: "fuzz/model.safetensors.index.json")
  _ = try? ModelConfig(json: array, path: "fuzz/config.json")
  if let manifest = try? OutputManifest(json: array, path: "fuzz/smelt-manifest.json") {
    _ = manifest.selfCheckProblem(array)
  }
  _ = ShardManifestFiles(json: array)
  // The value scanner reads any bytes as any dtype (the first byte picks it) without trapping.
  if let first = array.first {
    let dtype = DType.allCases[Int(first) % DType.allCases.count]
    _ = ValueScan.nonFinite(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), dtype: dtype)
    _ = ValueScan.nonPositive(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), dtype: dtype)
  }
  return 0
}

private func fuzzSafeTensorsHeader(_ bytes: UnsafeRawBufferPointer) {
  let header: SafeTensorsHeader
  do {
    header = try SafeTensorsHeader.parse(prefix: bytes, fileByteCount: bytes.count)
  } catch {
    // Every error must describe itself without trapping (messages format shapes, offsets, dtypes).
    _ = error.description
    _ = error.rule
    return
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
