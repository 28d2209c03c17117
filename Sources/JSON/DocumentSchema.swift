/// The schema ids of the JSON documents Smelt writes, in one scheme: `smelt.<document>/<major>`, the value of
/// the document's first member, `schema`. A reader checks the id it expects; a new major is an incompatible
/// change (formats/json.md lists every document).
public enum DocumentSchema {
  /// `smelt inspect --json` (safetensors checkpoints).
  public static let inspect = "smelt.inspect/1"
  /// `smelt inspect --json` on a GGUF file or split set.
  public static let inspectGGUF = "smelt.inspect-gguf/1"
  /// `smelt convert --json`: what a run wrote, per tensor.
  public static let convert = "smelt.convert/1"
  /// `smelt convert --dry-run --json`: what a run would write.
  public static let convertPlan = "smelt.convert-plan/1"
  /// `smelt convert --to gguf-* --json`.
  public static let convertGGUF = "smelt.convert-gguf/1"
  /// `smelt convert --to gguf-* --dry-run --json`.
  public static let convertGGUFPlan = "smelt.convert-gguf-plan/1"
  /// `smelt-manifest.json` of a convert output.
  public static let outputManifest = "smelt.manifest/1"
  /// `manifest.json` of a shard output.
  public static let shardManifest = "smelt.shard-manifest/1"
  /// `smelt shard --dry-run --json`: the manifest without tensors, with `fits` and alternatives.
  public static let shardDryRun = "smelt.shard-dry-run/1"
  /// `.smelt-shard-plan.json` of a shard output.
  public static let shardPlan = "smelt.shard-plan/1"
  /// `smelt verify --json`.
  public static let verify = "smelt.verify/1"
  /// `smelt validate --json` / `--json-file`.
  public static let validationReport = "smelt.validation-report/1"
  /// `smelt validate --sensitivity --json`.
  public static let sensitivity = "smelt.sensitivity/1"
  /// A split job's description (`--part I/N`).
  public static let job = "smelt.job/1"
  /// A split job's part receipt.
  public static let partReceipt = "smelt.part-receipt/1"

  /// Every id above.
  public static let all = [
    inspect, inspectGGUF, convert, convertPlan, convertGGUF, convertGGUFPlan, outputManifest, shardManifest,
    shardDryRun, shardPlan, verify, validationReport, sensitivity, job, partReceipt,
  ]

  /// Whether `document` declares `id`; `legacyFormat` also accepts the `format` member written before the
  /// scheme (`smelt-shard-manifest`, `smelt-shard-plan`), so outputs on disk stay readable.
  public static func declares(_ id: String, _ document: JSONValue, legacyFormat: String? = nil) -> Bool {
    if document["schema"]?.stringValue == id { return true }
    guard let legacyFormat else { return false }
    return document["format"]?.stringValue == legacyFormat
  }
}
