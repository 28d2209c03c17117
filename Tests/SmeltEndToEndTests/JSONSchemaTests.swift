import JSON
import SystemIO
import TestSupport
import Testing

/// Every JSON document Smelt writes, on stdout or on disk, opens with `schema`: one id of the one scheme
/// (`DocumentSchema`, formats/json.md), a different id for each kind of document.
@Suite("JSON schema ids") struct JSONSchemaTests {
  let sample = TestPaths.sample("tiny-deepseek-v3")

  /// The document's first member's name and its `schema` value.
  func schema(of text: String, _ label: String) throws -> String? {
    let value = try JSONParser.parse(text)
    let object = try #require(value.objectValue, "\(label) is not a JSON object")
    #expect(object.keys.first == "schema", "\(label): first member \(object.keys.first ?? "none")")
    return value["schema"]?.stringValue
  }

  func stdoutDocument(_ arguments: [String]) throws -> String? {
    let result = runSmelt(arguments)
    #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result.stderr)")
    return try schema(of: result.stdout, arguments.prefix(2).joined(separator: " "))
  }

  func fileDocument(_ path: String) throws -> String? {
    try schema(of: String(decoding: try FileSystem.readFile(path), as: UTF8.self), path)
  }

  @Test("every command's --json document and every JSON file an output holds open with its own smelt.<document>/<major> id")
  func oneScheme() throws {
    let directory = try TestPaths.scratchDirectory("json-schema")
    let converted = directory + "/bf16", gguf = directory + "/model.gguf", sharded = directory + "/shard"
    var ids: [String: String?] = [:]
    ids["inspect"] = try stdoutDocument(["inspect", sample, "--json"])
    ids["convert --dry-run"] = try stdoutDocument(["convert", sample, converted, "--to", "bf16", "--dry-run", "--json"])
    ids["convert"] = try stdoutDocument(["convert", sample, converted, "--to", "bf16", "--json", "-q"])
    ids["smelt-manifest.json"] = try fileDocument(converted + "/smelt-manifest.json")
    ids["verify"] = try stdoutDocument(["verify", converted, "--json"])
    ids["convert gguf --dry-run"] = try stdoutDocument(["convert", sample, gguf, "--to", "gguf-q8_0", "--dry-run", "--json"])
    ids["convert gguf"] = try stdoutDocument(["convert", sample, gguf, "--to", "gguf-q8_0", "--json", "-q"])
    ids["inspect gguf"] = try stdoutDocument(["inspect", gguf, "--json"])
    ids["shard --dry-run"] = try stdoutDocument(["shard", sample, sharded, "--devices", "2", "--dry-run", "--json"])
    #expect(runSmelt(["shard", sample, sharded, "--devices", "2", "-q"]).status == 0)
    ids["manifest.json"] = try fileDocument(sharded + "/manifest.json")
    ids[".smelt-shard-plan.json"] = try fileDocument(sharded + "/.smelt-shard-plan.json")
    ids["validate"] = try stdoutDocument(["validate", sample, sample, "--level", "tensor", "--layers", "0", "--json", "-q"])
    for (document, id) in ids {
      #expect(id.map(DocumentSchema.all.contains) == true, "\(document): schema \(id ?? "missing") is not one of DocumentSchema.all")
      #expect(id?.wholeMatch(of: /smelt\.[a-z0-9-]+\/[0-9]+/) != nil, "\(document): \(id ?? "missing")")
    }
    let values = ids.values.compactMap { $0 }
    #expect(Set(values).count == values.count, "two kinds of document share an id: \(ids)")
    // The readers know the new ids: verify and validate read the shard output through its manifest.
    #expect(runSmelt(["verify", sharded]).status == 0)
    #expect(runSmelt(["validate", sample, sharded, "--level", "tensor", "--layers", "0", "-q"]).status == 0)
  }

  @Test("--emit-sbatch with --json-file puts no text in the JSON file: the submit lines go to stderr")
  func emitScriptKeepsStdoutJSON() throws {
    let directory = try TestPaths.scratchDirectory("json-emit-sbatch")
    let runs: [(String, [String])] = [
      ("convert", ["convert", sample, directory + "/out", "--to", "bf16"]),
      ("validate", ["validate", sample, sample, "--level", "tensor"]),
    ]
    for (job, arguments) in runs {
      let script = directory + "/\(job).sh", json = directory + "/\(job).json"
      let result = runSmelt(arguments + ["--emit-sbatch", script, "--parts", "2", "--json-file", json])
      #expect(result.status == 0, "\(job): \(result.stderr)")
      #expect(FileSystem.exists(script))
      #expect(result.stderr.contains("submit: bash \(script)"), "\(job): \(result.stderr)")
      #expect(!FileSystem.exists(json) || (try? JSONParser.parse(String(decoding: try FileSystem.readFile(json), as: UTF8.self))) != nil,
        "\(job): --json-file holds text that is not JSON")
    }
  }
}
