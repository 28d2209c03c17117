import Testing

@testable import CommandLineSupport

@Suite("Usage error messages") struct UsageErrorTests {
  @Test("unknown option, with a suggestion within edit distance 2")
  func unknownOption() {
    #expect(usageError(["in", "--bogus"])?.description == "Unknown option '--bogus'")
    #expect(usageError(["in", "--foo"])?.description == "Unknown option '--foo'. Did you mean '--to'?")
    #expect(usageError(["in", "--treads", "4"])?.description == "Unknown option '--treads'. Did you mean '--threads'?")
    #expect(usageError(["in", "--no-indx"])?.description == "Unknown option '--no-indx'. Did you mean '--no-index'?")
    #expect(usageError(["in", "-x"])?.description == "Unknown option '-x'")
    #expect(usageError(["in", "-vx"])?.description == "Unknown option '-x'")
    #expect(usageError(["in", "--no-verbose"])?.description == "Unknown option '--no-verbose'")
  }

  @Test("missing value")
  func missingValue() {
    #expect(usageError(["in", "--to"])?.description == "Missing value for '--to <format>'")
    #expect(usageError(["in", "--threads", "--verbose"])?.description == "Missing value for '--threads <n>'")
    #expect(usageError(["in", "-j"])?.description == "Missing value for '--threads <n>'")
  }

  @Test("value outside the allowed values")
  func notAllowed() {
    #expect(
      usageError(["in", "--to", "ZZZ"])?.description
        == "The value 'ZZZ' is invalid for '--to <format>'. Please provide one of 'fp8', 'int4' or 'mxfp4'.")
    #expect(UsageError.formattedValueList(["a", "b"]) == ". Please provide one of 'a' and 'b'.")
    #expect(
      UsageError.formattedValueList(["a", "b", "c", "d", "e", "f"])
        == ". Please provide one of the following:\n  - a\n  - b\n  - c\n  - d\n  - e\n  - f")
  }

  @Test("value for a flag")
  func flagWithValue() {
    #expect(
      usageError(["in", "--json=yes"])?.description
        == "The option '--json' does not take any value, but 'yes' was specified.")
  }

  @Test("extra and missing positionals")
  func positionals() {
    #expect(usageError(["in", "out", "x"])?.description == "Unexpected argument 'x'")
    #expect(usageError(["in", "out", "x", "y"])?.description == "2 unexpected arguments: 'x', 'y'")
    #expect(usageError([])?.description == "Missing expected argument '<input>'")
    #expect(usageError(["--verbose"])?.description == "Missing expected argument '<input>'")
  }

  @Test("missing required option")
  func requiredOption() {
    let configuration = CommandConfiguration(
      name: "shard", abstract: "", arguments: [.option("plan", valueName: "file", help: "", required: true)])
    #expect(usageError([], configuration)?.description == "Missing expected argument '--plan <file>'")
    #expect(usageError(["--plan", "p.json"], configuration) == nil)
  }

  @Test("typed accessors explain bad values in one line")
  func typedAccessors() throws {
    let parsed = try parse(["in", "--threads", "many", "--max-shard-size", "5 parsecs"])
    #expect(throws: UsageError.invalidValue("many", argument: "--threads <n>", reason: "not an integer", allowedValues: [])) {
      try parsed.int("threads")
    }
    #expect(
      throws: UsageError.invalidValue(
        "5 parsecs", argument: "--max-shard-size <size>",
        reason: "expected a byte size such as 5GB, 2G, 4.5GB, 80GiB, 512MB or 1048576", allowedValues: [])
    ) { try parsed.byteCount("max-shard-size") }
    let ranged = try parse(["in", "-j", "0"])
    do {
      _ = try ranged.int("threads", in: 1...1024)
      Issue.record("expected an error")
    } catch {
      #expect(error.description == "The value '0' is invalid for '--threads <n>': must be between 1 and 1024")
    }
    #expect(throws: UsageError.missingArgument("--threads <n>")) { try parse(["in"]).int("threads") }
  }

  @Test("int, double, choice and pair accessors convert good values")
  func goodValues() throws {
    let parsed = try parse(["in", "-j", "8", "--to", "int4", "-k", "gpu0:80GiB", "-k", "cpu:1TB"])
    #expect(try parsed.int("threads", in: 1...64) == 8)
    #expect(try parsed.optionalInt("threads") == 8)
    #expect(try parse(["in"]).optionalInt("threads") == nil)
    #expect(try parsed.double("threads") == 8.0)
    #expect(try parsed.choice("to", as: Format.self) == .int4)
    #expect(try parse(["in"]).choice("to", as: Format.self) == .fp8)
    #expect(try parsed.byteCount("max-shard-size") == 5_000_000_000)
    #expect(try parsed.pairs("keep", separator: ":") == [
      KeyValuePair(key: "gpu0", value: "80GiB"), KeyValuePair(key: "cpu", value: "1TB"),
    ])
    let capacities = try parsed.values("keep") { (text) throws(InvalidArgumentValue) in
      try ArgumentValues.pair(text, separator: ":") { (size) throws(InvalidArgumentValue) in
        try ArgumentValues.byteCount(size)
      }
    }
    #expect(capacities.map(\.value) == [80 << 30, 1_000_000_000_000])
  }

  @Test("pairs need a key and a value")
  func badPairs() throws {
    for bad in ["novalue", "=x", "x="] {
      let parsed = try parse(["in", "--keep", bad])
      #expect(
        throws: UsageError.invalidValue(bad, argument: "--keep <glob>", reason: "expected KEY=VALUE", allowedValues: [])
      ) { try parsed.pairs("keep", separator: "=") }
    }
    let split = ArgumentValues.split("*.experts.*=int4=x", on: "=")
    #expect(split?.key == "*.experts.*" && split?.value == "int4=x")
    #expect(ArgumentValues.split("plain", on: "=") == nil)
  }

  @Test("doubles reject non-finite and non-decimal text")
  func doubles() {
    #expect(throws: InvalidArgumentValue("not a number")) { try ArgumentValues.double("nan") }
    #expect(throws: InvalidArgumentValue("not a number")) { try ArgumentValues.double("inf") }
    #expect(throws: InvalidArgumentValue("not a number")) { try ArgumentValues.double("0x1p3") }
    #expect(throws: InvalidArgumentValue("must be between 0.0 and 1.0")) { try ArgumentValues.double("1.5", in: 0...1) }
    #expect((try? ArgumentValues.double("1e-3")) == 0.001)
  }
}
