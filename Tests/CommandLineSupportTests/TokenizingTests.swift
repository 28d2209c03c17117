import Testing

@testable import CommandLineSupport

@Suite("Tokenizing") struct TokenizingTests {
  @Test("accepts --name value and --name=value")
  func separateAndInlineValues() throws {
    #expect(try parse(["in", "--to", "int4"]).string("to") == "int4")
    #expect(try parse(["in", "--to=int4"]).string("to") == "int4")
    #expect(try parse(["in", "--max-shard-size=a=b"]).string("max-shard-size") == "a=b")
    #expect(try parse(["in", "--threads="]).string("threads") == "")
  }

  @Test("uses the default when an option is absent and the last value when repeated")
  func defaultsAndLastValueWins() throws {
    #expect(try parse(["in"]).string("to") == "fp8")
    #expect(try parse(["in"]).isPresent("to") == false)
    #expect(try parse(["in", "--to", "int4", "--to", "mxfp4"]).string("to") == "mxfp4")
    #expect(try parse(["in"]).optionalString("threads") == nil)
  }

  @Test("collects repeated options in order")
  func repeatedOptions() throws {
    let parsed = try parse(["in", "--keep", "a*", "-k", "b*", "--keep=c*", "-kd*"])
    #expect(parsed.strings("keep") == ["a*", "b*", "c*", "d*"])
    #expect(try parse(["in"]).strings("keep") == [])
  }

  @Test("reads flags, inverted flags and packed short flags")
  func flags() throws {
    #expect(try parse(["in"]).flag("index") == true)
    #expect(try parse(["in", "--no-index"]).flag("index") == false)
    #expect(try parse(["in", "--no-index", "--index"]).flag("index") == true)
    #expect(try parse(["in"]).flag("verbose") == false)
    let packed = try parse(["in", "-vq"])
    #expect(packed.flag("verbose") && packed.flag("quiet"))
    let packedWithValue = try parse(["in", "-vj", "8"])
    #expect(packedWithValue.flag("verbose"))
    #expect(try packedWithValue.int("threads") == 8)
  }

  @Test("treats everything after -- as positional")
  func endOfOptions() throws {
    let parsed = try parse(["--", "--weird-dir", "-v"])
    #expect(try parsed.string("input") == "--weird-dir")
    #expect(try parsed.string("output") == "-v")
    #expect(parsed.flag("verbose") == false)
  }

  @Test("treats - and negative numbers as values")
  func dashValues() throws {
    #expect(try parse(["-"]).string("input") == "-")
    #expect(try parse(["in", "--threads", "-1"]).int("threads") == -1)
  }

  @Test("fills positionals in order and leaves optional ones absent")
  func positionals() throws {
    let one = try parse(["in"])
    #expect(try one.string("input") == "in")
    #expect(one.optionalString("output") == nil)
    let two = try parse(["--verbose", "in", "out"])
    #expect(try two.string("output") == "out")
  }

  @Test("gives a repeating positional every remaining argument")
  func repeatingPositional() throws {
    let configuration = CommandConfiguration(
      name: "verify", abstract: "",
      arguments: [.positional("reference", help: ""), .positional("files", help: "", repeating: true)])
    let parsed = try parse(["ref", "a", "b", "--", "-c"], configuration)
    #expect(parsed.strings("files") == ["a", "b", "-c"])
    #expect(try parse(["ref"], configuration).strings("files") == [])
  }

  @Test("recognizes -h and --help anywhere before --")
  func helpRequests() throws {
    #expect(try CommandLineParser.parse(["in", "--bogus", "-h"], for: convertConfiguration) == .helpRequested)
    #expect(try CommandLineParser.parse(["--help"], for: convertConfiguration) == .helpRequested)
    #expect(try CommandLineParser.parse(["in", "--", "--help"], for: convertConfiguration) != .helpRequested)
  }

  @Test("declarations are checked for mistakes")
  func declarationProblems() {
    #expect(convertConfiguration.problems.isEmpty)
    let bad = CommandConfiguration(
      name: "bad", abstract: "",
      arguments: [
        .positional("rest", help: "", repeating: true), .positional("last", help: ""),
        .option("to", short: "h", help: "", default: "x", values: ["a"]), .flag("to", help: ""),
      ])
    #expect(
      bad.problems == [
        "'-h' is reserved for help", "the default 'x' of '--to' is not an allowed value", "'to' is declared twice",
        "the repeating positional '<rest>' must be the last positional",
        "the required positional '<last>' follows an optional one",
      ])
  }

  @Test("edit distance counts insertions, deletions and substitutions")
  func editDistances() {
    #expect(editDistance("--tread", "--threads") == 2)
    #expect(editDistance("", "abc") == 3)
    #expect(editDistance("kitten", "sitting") == 3)
    #expect(closestMatch(to: "--treads", among: ["--to", "--threads"]) == "--threads")
    #expect(closestMatch(to: "--zzzzzz", among: ["--to", "--threads"]) == nil)
  }
}
