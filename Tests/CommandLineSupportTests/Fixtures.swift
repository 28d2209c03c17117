import CommandLineSupport

/// A convert-like declaration exercising every kind of argument.
let convertConfiguration = CommandConfiguration(
  name: "convert", abstract: "Re-quantize a checkpoint.",
  discussion: "Reads every tensor once and writes the output directory shard by shard.",
  arguments: [
    .positional("input", help: "The checkpoint directory to read."),
    .positional("output", help: "Where to write the result.", optional: true),
    .option("to", valueName: "format", help: "The target format.", default: "fp8", values: ["fp8", "int4", "mxfp4"]),
    .option("max-shard-size", valueName: "size", help: "Largest output file.", default: "5GB"),
    .option("keep", short: "k", valueName: "glob", help: "Tensors to leave unchanged.", repeating: true),
    .option("threads", short: "j", valueName: "n", help: "Worker threads."),
    .flag("index", help: "Write model.safetensors.index.json.", inversion: true, default: true),
    .flag("verbose", short: "v", help: "Log every tensor."),
    .quiet,
    .json,
  ])

enum Format: String { case fp8, int4, mxfp4 }

/// Parses `arguments` against `configuration`, expecting success.
func parse(_ arguments: [String], _ configuration: CommandConfiguration = convertConfiguration) throws
  -> ParsedArguments
{
  try ParsedArguments(arguments, configuration: configuration)
}

/// The usage error parsing `arguments` throws, or `nil`.
func usageError(_ arguments: [String], _ configuration: CommandConfiguration = convertConfiguration)
  -> UsageError?
{
  do {
    _ = try CommandLineParser.parse(arguments, for: configuration)
    return nil
  } catch {
    return error
  }
}
