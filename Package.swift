// swift-tools-version:6.2
//
// Smelt: convert, re-quantize, shard and validate large safetensors checkpoints on a CPU.
//
// Module map (dependencies point downward only):
//
//   smelt (executable)        thin: argv -> SmeltCommands.main
//   SmeltCommands             one file per subcommand; parse, call a library, print
//   CommandLineSupport        argument parsing, help text, exit codes, progress reporting
//   Sensitivity               validate --sensitivity: KL per tensor group, the recipe that reaches a target
//   Pipeline / Sharding / Validation   the jobs: convert, shard, validate
//   WeightSources             the forward pass's weights from any checkpoint Smelt reads (safetensors, a smelt
//                             shard output through its manifest, a deepseek2 GGUF), dequantized lazily
//   JobParts                  splitting a job into parts: --part I/N and scheduler environments, balancing by
//                             bytes of work, receipts, locks, --finalize's checks, Slurm job scripts
//   ReferenceModel            F32 CPU forward pass (DeepSeek-V3 MLA + MoE), its token batches and logits file
//   Checkpoint                checkpoint directories, index.json, config.json, sharded writer
//   WeightFormats             the format registry: detection, geometry, the one decoder
//   GGUFModel                 what llama.cpp expects of a model's GGUF: deepseek2 mapping, tokenizer metadata,
//                             llama-quantize's per-tensor types, imatrix files
//   SafeTensors               strict header parser, header planner, memory-mapped reader
//   GGUF                      GGUF v3 container: strict parser, header planner, streaming writer, splits
//   Quantization              pure codecs and block quantizers (FP8, int4, MXFP4, NVFP4, ...)
//   GGML                      pure: ggml's tensor types and block kernels, bit-exact with ggml-quants.c
//   JSON                      strict RFC 8259 parser and a deterministic writer
//   TensorCore                DType, checked shape arithmetic, SHA-256, parallel loops, small shared helpers
//   SystemIO                  system calls, the only code importing the C library besides CMath: file
//                             descriptors, mmap, pread/pwrite loops, atomic output, signals, environment
//   CMath                     libm's elementary functions (exp, log, log2f, ...) for the pure modules
import PackageDescription

/// Release builds target Haswell (AVX2, FMA, F16C): Float16 conversion, rounding and FMA become single
/// instructions instead of libm calls. Build with BASELINE=1 for older x86-64 CPUs.
let baseline = Context.environment["BASELINE"] != nil
let releaseCodegen: [SwiftSetting] =
  baseline ? [] : [.unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux], configuration: .release))]

let common: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")] + releaseCodegen
/// Numeric kernels are optimized in debug builds too: unoptimized SIMD code runs ~90x slower, which would make
/// `swift test` wait minutes on golden vectors. So are the parsers and name tables that tests drive with
/// million-tensor headers (linear-time checks), which unoptimized take minutes too.
let optimizedKernels: [SwiftSetting] = common + [.unsafeFlags(["-O"], .when(configuration: .debug))]
let libm: [LinkerSetting] = [.linkedLibrary("m", .when(platforms: [.linux]))]

let package = Package(
  name: "Smelt",
  products: [
    .executable(name: "smelt", targets: ["smelt"])
  ],
  targets: [
    .target(name: "CMath", swiftSettings: optimizedKernels, linkerSettings: libm),
    .target(name: "TensorCore", dependencies: ["CMath", "SystemIO"], swiftSettings: optimizedKernels),
    .target(name: "JSON", swiftSettings: optimizedKernels),
    .target(name: "SystemIO", swiftSettings: common),
    .target(name: "SafeTensors", dependencies: ["TensorCore", "JSON", "SystemIO"], swiftSettings: optimizedKernels),
    .target(name: "Quantization", dependencies: ["TensorCore", "CMath"], swiftSettings: common),
    .target(name: "GGML", dependencies: ["CMath"], swiftSettings: optimizedKernels),
    .target(name: "GGUF", dependencies: ["GGML", "SystemIO"], swiftSettings: common),
    .target(
      name: "WeightFormats", dependencies: ["TensorCore", "JSON", "SystemIO", "SafeTensors", "Quantization", "GGML"],
      swiftSettings: optimizedKernels),
    .target(
      name: "GGUFModel", dependencies: ["CMath", "TensorCore", "GGML", "GGUF", "JSON", "SystemIO", "SafeTensors", "Checkpoint", "WeightFormats"],
      swiftSettings: common),
    .target(
      name: "Checkpoint", dependencies: ["TensorCore", "JSON", "SystemIO", "SafeTensors", "WeightFormats"],
      swiftSettings: optimizedKernels),
    .target(
      name: "ReferenceModel", dependencies: ["TensorCore", "CMath", "SafeTensors", "Quantization", "Checkpoint"],
      swiftSettings: common),
    .target(
      name: "WeightSources",
      dependencies: [
        "TensorCore", "JSON", "SystemIO", "SafeTensors", "Quantization", "WeightFormats", "Checkpoint", "GGUFModel",
        "ReferenceModel",
      ],
      swiftSettings: common),
    .target(name: "JobParts", dependencies: ["TensorCore", "JSON", "SystemIO"], swiftSettings: common),
    .target(
      name: "Pipeline",
      dependencies: [
        "TensorCore", "JSON", "SystemIO", "SafeTensors", "Quantization", "Checkpoint", "WeightFormats", "JobParts", "GGML", "GGUF",
        "GGUFModel",
      ],
      swiftSettings: common),
    .target(
      name: "Sharding", dependencies: ["TensorCore", "JSON", "SystemIO", "SafeTensors", "Checkpoint", "WeightFormats", "Pipeline"],
      swiftSettings: common),
    .target(
      name: "Validation",
      dependencies: [
        "TensorCore", "CMath", "JSON", "SafeTensors", "Quantization", "WeightFormats", "Checkpoint", "ReferenceModel",
        "WeightSources",
      ],
      swiftSettings: common),
    .target(
      name: "Sensitivity",
      dependencies: [
        "TensorCore", "JSON", "SafeTensors", "Quantization", "WeightFormats", "Checkpoint", "ReferenceModel", "WeightSources",
        "Pipeline", "Validation",
      ],
      swiftSettings: common),
    .target(name: "CommandLineSupport", dependencies: ["SystemIO"], swiftSettings: common),
    .target(
      name: "SmeltCommands",
      dependencies: [
        "TensorCore", "JSON", "SystemIO", "SafeTensors", "Quantization", "WeightFormats", "Checkpoint", "ReferenceModel",
        "WeightSources", "Pipeline", "Sharding", "Validation", "Sensitivity", "JobParts", "CommandLineSupport", "GGML", "GGUF",
        "GGUFModel",
      ],
      swiftSettings: common),
    .executableTarget(name: "smelt", dependencies: ["SmeltCommands"], swiftSettings: common),

    .target(
      name: "TestSupport", dependencies: ["TensorCore", "SystemIO", "SafeTensors"],
      path: "Tests/TestSupport", swiftSettings: common),
    .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"], swiftSettings: common),
    .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: common),
    .testTarget(name: "SystemIOTests", dependencies: ["SystemIO"], swiftSettings: common),
    .testTarget(
      name: "SafeTensorsTests", dependencies: ["SafeTensors"],
      resources: [.copy("Malformed")], swiftSettings: common),
    .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "WeightFormats", "TestSupport"], swiftSettings: common),
    .testTarget(
      name: "QuantizationTests", dependencies: ["Quantization"], resources: [.copy("Golden")],
      swiftSettings: common),
    .testTarget(
      name: "GGMLTests", dependencies: ["GGML", "TensorCore", "TestSupport"], exclude: ["Golden"], swiftSettings: common),
    .testTarget(name: "GGUFTests", dependencies: ["GGUF", "GGML", "SystemIO", "TestSupport"], swiftSettings: common),
    .testTarget(
      name: "GGUFModelTests",
      dependencies: ["GGUFModel", "GGUF", "GGML", "Checkpoint", "SafeTensors", "JSON", "SystemIO", "TestSupport"],
      exclude: ["Golden"], swiftSettings: common),
    .testTarget(
      name: "ReferenceModelTests", dependencies: ["ReferenceModel", "Checkpoint"],
      resources: [.copy("Golden")], swiftSettings: common),
    .testTarget(name: "JobPartsTests", dependencies: ["JobParts", "TensorCore", "SystemIO", "TestSupport"], swiftSettings: common),
    .testTarget(
      name: "PipelineTests", dependencies: ["CMath", "Pipeline", "WeightFormats", "JobParts", "GGML", "GGUF", "GGUFModel", "TestSupport"],
      swiftSettings: common),
    .testTarget(name: "ShardingTests", dependencies: ["Sharding", "WeightFormats"], swiftSettings: common),
    .testTarget(
      name: "WeightSourcesTests",
      dependencies: ["WeightSources", "ReferenceModel", "Checkpoint", "WeightFormats", "TensorCore", "TestSupport"],
      swiftSettings: common),
    .testTarget(
      name: "ValidationTests",
      dependencies: ["Validation", "WeightSources", "Sensitivity", "WeightFormats", "Pipeline", "SmeltCommands", "TestSupport"],
      swiftSettings: common),
    .testTarget(
      name: "CommandLineSupportTests", dependencies: ["CommandLineSupport"], swiftSettings: common),
    .testTarget(
      name: "SmeltEndToEndTests", dependencies: ["SmeltCommands", "TestSupport"], exclude: ["Golden"], swiftSettings: common),
  ]
)
