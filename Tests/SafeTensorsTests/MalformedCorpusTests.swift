import Foundation
import JSON
import SafeTensors
import Testing

/// The committed corpus (`scripts/make-malformed-corpus.py`): every file must be rejected with the rule
/// its manifest names (or accepted, for `ok`), through the real mmap reader, never with a crash.
@Suite("malformed corpus")
struct MalformedCorpusTests {
  struct Case: CustomStringConvertible, Sendable {
    let file: String
    let rule: String
    let summary: String
    var description: String { file }
  }

  static let directory: String = Bundle.module.path(forResource: "Malformed", ofType: nil) ?? "missing"

  static let cases: [Case] = {
    guard let data = FileManager.default.contents(atPath: directory + "/manifest.json"),
      let manifest = try? JSONParser.parse(Array(data)), let files = manifest["files"]?.arrayValue
    else { return [] }
    return files.compactMap { entry in
      guard let file = entry["file"]?.stringValue, let rule = entry["rule"]?.stringValue else { return nil }
      return Case(file: file, rule: rule, summary: entry["description"]?.stringValue ?? "")
    }
  }()

  @Test("the manifest lists every corpus file, one case per rule at least")
  func manifestIsComplete() throws {
    let listed = Set(Self.cases.map(\.file))
    let present = try Set(
      FileManager.default.contentsOfDirectory(atPath: Self.directory).filter { $0.hasSuffix(".safetensors") })
    #expect(listed.count > 80)
    #expect(listed == present)
    let rules = Set(Self.cases.map(\.rule))
    for rule in [
      "headerTooSmall", "headerTooLarge", "invalidHeaderLength", "invalidUTF8", "invalidJSON", "headerNotObject",
      "duplicateTensor", "invalidMetadata", "invalidEntry", "missingField", "unknownDType", "invalidShape",
      "invalidDataOffsets", "invalidOffset", "validationOverflow", "misalignedSlice", "tensorInvalidInfo",
      "metadataIncompleteBuffer", "ok",
    ] {
      #expect(rules.contains(rule), "no corpus file for \(rule)")
    }
  }

  @Test("each file gets its specific error", arguments: cases)
  func rejectsWithRule(_ testCase: Case) {
    let path = Self.directory + "/" + testCase.file
    do {
      let file = try SafeTensorsFile(path: path)
      #expect(testCase.rule == "ok", "\(testCase.file) was accepted: \(testCase.summary)")
      // Accepted files are fully readable.
      for entry in file.entries { #expect(file.tensor(named: entry.name)?.bytes.count == entry.byteCount) }
    } catch {
      #expect(error.error.rule == testCase.rule, "\(testCase.file): \(error)")
      #expect(error.path == path)
      #expect(error.description.hasPrefix(path + ": "))
    }
  }

  @Test("foreign files get a hint about what they are")
  func hints() {
    let expected: [(String, ForeignFileKind)] = [
      ("lfs-pointer", .gitLFSPointer), ("html-page", .html), ("zip-archive", .zip), ("pickle", .pickle),
    ]
    for (name, kind) in expected {
      let error = openError(Self.directory + "/\(name).safetensors")
      guard case .headerTooLarge(_, let looksLike) = error?.error else {
        Issue.record("\(name): \(String(describing: error))")
        continue
      }
      #expect(looksLike == kind)
    }
    let lfs = SafeTensorsError.headerTooLarge(headerByteCount: 1, looksLike: .gitLFSPointer)
    #expect(lfs.description.contains("git lfs pull"))
  }
}

