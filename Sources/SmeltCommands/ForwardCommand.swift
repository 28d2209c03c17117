import Checkpoint
import CommandLineSupport
import Pipeline
import ReferenceModel
import SystemIO
import TensorCore
import WeightSources

/// `smelt forward MODEL --tokens 'ID,ID;ID,ID'`: the F32 reference forward pass.
struct ForwardCommand: Command {
  static let configuration = CommandConfiguration(
    name: "forward",
    abstract: "Run the F32 CPU reference forward pass (DeepSeek-V3/V3.2, Qwen3-MoE, GLM-4.5, MiniMax-M2, gpt-oss) and print or save the logits.",
    discussion: """
      MODEL is a checkpoint in any format Smelt reads (F32/F16/BF16, FP8 block, compressed-tensors FP8, int4 \
      pack-quantized, GPTQ, MLX, MXFP4, NVFP4) or a smelt shard output directory; weights are dequantized to F32 \
      one layer at a time. Tokens: comma-separated ids, sequences separated by ';' (all \
      sequences the same length); --tokens-file reads the same syntax, one sequence per line. --output writes \
      the F32 tensor 'logits' [batch, seq, vocab] (plus I64 'input_ids') as safetensors.
      """,
    arguments: [
      .positional("model", help: "The checkpoint (directory or .safetensors file)."),
      .option("tokens", valueName: "ids", help: "Token ids: 'ID,ID,...[;ID,...]'."),
      .option("tokens-file", valueName: "file", help: "A file of token ids (one sequence per line)."),
      .option("output", short: "o", valueName: "file", help: "Write the logits to this .safetensors file."),
      .option("top", valueName: "k", help: "How many top tokens to print per position.", default: "5"),
      .quiet,
    ])

  var model: String
  var tokens: [[Int]]
  var output: String?
  var top: Int

  init(arguments: ParsedArguments) throws {
    model = try arguments.string("model")
    output = arguments.optionalString("output")
    top = try arguments.int("top", in: 0...1_000_000)
    tokens = try Self.tokens(arguments)
  }

  /// Reads `--tokens` or `--tokens-file` (exactly one of them).
  static func tokens(_ arguments: ParsedArguments) throws -> [[Int]] {
    let inline = arguments.optionalString("tokens"), file = arguments.optionalString("tokens-file")
    let text: String
    switch (inline, file) {
    case (let inline?, nil): text = inline
    case (nil, let file?): text = String(decoding: try FileSystem.readFile(file), as: UTF8.self)
    case (nil, nil): throw UsageError.invalid("give the token ids with --tokens 'ID,ID,...' or --tokens-file FILE")
    default: throw UsageError.invalid("--tokens and --tokens-file cannot be used together")
    }
    do { return try TokenBatch.parse(text) } catch { throw UsageError.invalid("\(error)") }
  }

  func run(context: CommandContext) throws {
    let weights = try CheckpointWeightProvider(path: model)
    if let output { try OutputDirectory.refuseReplacingInput(file: output, inputs: weights.source.inputFilePaths) }
    let configuration = try weights.modelConfiguration()
    do { try TokenBatch.check(tokens, vocabularySize: configuration.vocabularySize) } catch {
      throw UsageError.invalid("\(error)")
    }
    context.log("forward pass: \(tokens.count) sequence(s) × \(tokens[0].count) tokens, \(configuration.layerCount) layers")
    let reference = try ReferenceModel(configuration: configuration, weights: weights)
    try reference.checkWeightShapes()
    let result = try reference.forward(tokens, options: ForwardOptions(recordRouting: false))
    try weights.source.checkUnchanged()
    if let output {
      try LogitsFile.write(logits: result.logits, tokens: tokens, to: output)
      context.log("wrote logits \(result.logits.shape) to \(output)")
    }
    guard top > 0 else { return }
    let V = configuration.vocabularySize
    let k = min(top, V)
    var rows: [[String]] = [["seq", "pos", "token"] + (1...k).map { "top \($0) (id: logit)" }]
    for (b, sequence) in tokens.enumerated() {
      for (t, token) in sequence.enumerated() {
        let start = (b * sequence.count + t) * V
        let logits = result.logits.values[start..<(start + V)]
        let best = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(k)
        rows.append(["\(b)", "\(t)", "\(token)"] + best.map { "\($0 - start): \(ReportFormat.number(Double(logits[$0])))" })
      }
    }
    context.stdout.write(TextTable.render(rows, rightAligned: [0, 1, 2]))
  }
}
