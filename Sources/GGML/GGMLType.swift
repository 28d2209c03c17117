/// A ggml tensor type: its id in GGUF files (`enum ggml_type` in ggml.h), its name and its block geometry
/// (`type_traits` in ggml.c: `blck_size` elements stored in `type_size` bytes).
///
/// Every id a current GGUF file can hold is listed, so a reader can size and name any tensor; Smelt has
/// kernels for a subset (`GGMLKernels.forType`).
public enum GGMLType: UInt32, CaseIterable, Sendable, Hashable {
  case f32 = 0
  case f16 = 1
  case q4_0 = 2
  case q4_1 = 3
  case q5_0 = 6
  case q5_1 = 7
  case q8_0 = 8
  case q8_1 = 9
  case q2_K = 10
  case q3_K = 11
  case q4_K = 12
  case q5_K = 13
  case q6_K = 14
  case q8_K = 15
  case iq2_xxs = 16
  case iq2_xs = 17
  case iq3_xxs = 18
  case iq1_s = 19
  case iq4_nl = 20
  case iq3_s = 21
  case iq2_s = 22
  case iq4_xs = 23
  case i8 = 24
  case i16 = 25
  case i32 = 26
  case i64 = 27
  case f64 = 28
  case iq1_m = 29
  case bf16 = 30
  case tq1_0 = 34
  case tq2_0 = 35
  case mxfp4 = 39
  case nvfp4 = 40
  case q1_0 = 41
  case q2_0 = 42

  /// Elements per block along the row (`ne[0]` must be a multiple of it).
  public var blockSize: Int {
    switch self {
    case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: 1
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: 32
    case .nvfp4, .q2_0: 64
    case .q1_0: 128
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq3_s, .iq2_s, .iq4_xs,
      .iq1_m, .tq1_0, .tq2_0:
      256
    }
  }

  /// Bytes per block.
  public var blockByteCount: Int {
    switch self {
    case .f32, .i32: 4
    case .f16, .bf16, .i16: 2
    case .i8: 1
    case .i64, .f64: 8
    case .q4_0, .iq4_nl, .q1_0, .q2_0: 18
    case .q4_1: 20
    case .q5_0: 22
    case .q5_1: 24
    case .q8_0: 34
    case .q8_1, .nvfp4: 36
    case .mxfp4: 17
    case .q2_K: 84
    case .q3_K, .iq3_s: 110
    case .q4_K: 144
    case .q5_K: 176
    case .q6_K: 210
    case .q8_K: 292
    case .iq2_xxs, .tq2_0: 66
    case .iq2_xs: 74
    case .iq3_xxs: 98
    case .iq1_s: 50
    case .iq2_s: 82
    case .iq4_xs: 136
    case .iq1_m: 56
    case .tq1_0: 54
    }
  }

  /// ggml's lower-case name (`ggml_type_name`): `"q4_K"`, `"bf16"`, ...
  public var name: String {
    switch self {
    case .f32: "f32"
    case .f16: "f16"
    case .q4_0: "q4_0"
    case .q4_1: "q4_1"
    case .q5_0: "q5_0"
    case .q5_1: "q5_1"
    case .q8_0: "q8_0"
    case .q8_1: "q8_1"
    case .q2_K: "q2_K"
    case .q3_K: "q3_K"
    case .q4_K: "q4_K"
    case .q5_K: "q5_K"
    case .q6_K: "q6_K"
    case .q8_K: "q8_K"
    case .iq2_xxs: "iq2_xxs"
    case .iq2_xs: "iq2_xs"
    case .iq3_xxs: "iq3_xxs"
    case .iq1_s: "iq1_s"
    case .iq4_nl: "iq4_nl"
    case .iq3_s: "iq3_s"
    case .iq2_s: "iq2_s"
    case .iq4_xs: "iq4_xs"
    case .i8: "i8"
    case .i16: "i16"
    case .i32: "i32"
    case .i64: "i64"
    case .f64: "f64"
    case .iq1_m: "iq1_m"
    case .bf16: "bf16"
    case .tq1_0: "tq1_0"
    case .tq2_0: "tq2_0"
    case .mxfp4: "mxfp4"
    case .nvfp4: "nvfp4"
    case .q1_0: "q1_0"
    case .q2_0: "q2_0"
    }
  }

  /// The type named `name` (case-insensitive: `"Q4_K"`, `"q4_k"` and `"q4_K"` all match).
  public init?(name: String) {
    let lowered = name.lowercased()
    guard let match = GGMLType.allCases.first(where: { $0.name.lowercased() == lowered }) else { return nil }
    self = match
  }

  /// True for the integer element types (a token → expert table, not weights).
  public var isInteger: Bool { self == .i8 || self == .i16 || self == .i32 || self == .i64 }

  /// True for the block-quantized types (ggml's `is_quantized`).
  public var isQuantized: Bool {
    switch self {
    case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: false
    default: true
    }
  }

  /// Bytes of one row of `elementCount` elements, or nil when the count is not a whole number of blocks or
  /// the size overflows.
  public func rowByteCount(elementCount: Int) -> Int? {
    guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
    let (bytes, overflow) = (elementCount / blockSize).multipliedReportingOverflow(by: blockByteCount)
    return overflow ? nil : bytes
  }

  /// Bits per weight (`8 · bytes / elements` of one block): 4.5 for Q4_0, 4.5 for Q4_K, 16 for F16.
  public var bitsPerWeight: Double { Double(8 * blockByteCount) / Double(blockSize) }
}

extension GGMLType: CustomStringConvertible {
  public var description: String { name }
}
