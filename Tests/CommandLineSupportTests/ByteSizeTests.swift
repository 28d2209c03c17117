import Testing

@testable import CommandLineSupport

@Suite("Byte sizes") struct ByteSizeTests {
  @Test(
    "parses decimal, binary and plain byte sizes",
    arguments: [
      ("5GB", 5_000_000_000), ("4.5GB", 4_500_000_000), ("80GiB", 80 * (1 << 30)), ("512MB", 512_000_000),
      ("100KB", 100_000), ("1TB", 1_000_000_000_000), ("1048576", 1_048_576), ("0", 0), ("7B", 7),
      ("5gb", 5_000_000_000), ("80gib", 80 * (1 << 30)), ("2 GiB", 2 << 30), ("1.5KiB", 1536),
      ("0.5kb", 500), ("2PiB", 2 << 50), ("1.25MiB", 1_310_720), ("010MB", 10_000_000),
    ])
  func parses(text: String, bytes: Int) throws {
    #expect(try ArgumentValues.byteCount(text) == bytes)
  }

  @Test(
    "accepts the bare decimal units people write (2G, 500M, 1.5T), as llama.cpp's gguf-split does",
    arguments: [("2G", 2_000_000_000), ("500M", 500_000_000), ("1.5T", 1_500_000_000_000), ("64k", 64_000), ("5 K", 5_000)])
  func bareUnits(text: String, bytes: Int) throws {
    #expect(try ArgumentValues.byteCount(text) == bytes)
  }

  @Test(
    "rejects negatives, garbage and ambiguous units",
    arguments: [
      "-5GB", "", "GB", "5 ", " 5GB", "5XB", "5GBs", "1e3", "5..0GB", "5.GB", ".5GB", "5  GB",
      "+5GB", "0x10", "5_000", "٣GB",
    ])
  func rejects(text: String) {
    #expect(throws: InvalidArgumentValue("expected a byte size such as 5GB, 2G, 4.5GB, 80GiB, 512MB or 1048576")) {
      try ArgumentValues.byteCount(text)
    }
  }

  @Test("rejects fractions of a byte, overflow and out-of-range sizes")
  func limits() {
    #expect(throws: InvalidArgumentValue("not a whole number of bytes")) { try ArgumentValues.byteCount("1.5") }
    #expect(throws: InvalidArgumentValue("not a whole number of bytes")) { try ArgumentValues.byteCount("1.0001KB") }
    #expect(throws: InvalidArgumentValue("too large")) { try ArgumentValues.byteCount("99999999999PB") }
    #expect(throws: InvalidArgumentValue("too large")) { try ArgumentValues.byteCount("99999999999999999999") }
    #expect(throws: InvalidArgumentValue("too many decimal places")) {
      try ArgumentValues.byteCount("1.0000000000000000GB")
    }
    #expect(throws: InvalidArgumentValue("must be at least 1 B")) { try ArgumentValues.byteCount("0", in: 1...Int.max) }
    #expect(throws: InvalidArgumentValue("must be between 1.0 kB and 1.0 MB")) {
      try ArgumentValues.byteCount("2MB", in: 1000...1_000_000)
    }
  }

  @Test("formats bytes, rates and durations for people")
  func display() {
    #expect(DisplayFormat.bytes(512) == "512 B")
    #expect(DisplayFormat.bytes(1_234_567_890) == "1.2 GB")
    #expect(DisplayFormat.bytes(850_000_000) == "850 MB")
    #expect(DisplayFormat.bytes(12_340_000) == "12.3 MB")
    #expect(DisplayFormat.bytes(999_960) == "1.0 MB")
    #expect(DisplayFormat.bytes(-3) == "0 B")
    #expect(DisplayFormat.duration(seconds: 2.2) == "0:03")
    #expect(DisplayFormat.duration(seconds: 3725) == "1:02:05")
    #expect(DisplayFormat.duration(seconds: .infinity) == "--:--")
  }

  @Test(
    "parameter counts print as counts with two decimals and a noun, never like a byte size",
    arguments: [
      (684_489_845_760, "684.49 B params"), (5_799_936, "5.80 M params"), (37_549_999, "37.55 M params"),
      (1_000_000_000, "1.00 B params"), (999, "999 params"), (1_234, "1.23 k params"), (1_995_000, "2.00 M params"),
    ])
  func parameterCounts(count: Int, text: String) {
    #expect(DisplayFormat.count(count, noun: "params") == text)
  }
}
