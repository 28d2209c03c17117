import Testing

@testable import JSON

@Suite("JSON numbers")
struct JSONNumberTests {
  @Test(
    "integer accessors accept only integer text that fits",
    arguments: [
      ("0", 0 as Int?, 0 as UInt64?),
      ("-0", 0, nil),
      ("42", 42, 42),
      ("-42", -42, nil),
      ("9223372036854775807", Int.max, 9_223_372_036_854_775_807),
      ("-9223372036854775808", Int.min, nil),
      ("9223372036854775808", nil, 9_223_372_036_854_775_808),
      ("18446744073709551615", nil, UInt64.max),
      ("18446744073709551616", nil, nil),
      ("9007199254740993", 9_007_199_254_740_993, 9_007_199_254_740_993),
      ("8.0", nil, nil),
      ("1e3", nil, nil),
      ("1E3", nil, nil),
      ("0.5", nil, nil),
    ] as [(String, Int?, UInt64?)])
  func integerAccessors(text: String, int: Int?, uint64: UInt64?) throws {
    let number = try #require(try JSONParser.parse(text).numberValue)
    #expect(number.text == text)
    #expect(number.int == int)
    #expect(number.uint64 == uint64)
    #expect(number.isInteger == !(text.contains(".") || text.contains("e") || text.contains("E")))
  }

  @Test("double accessor rounds correctly")
  func doubles() throws {
    #expect(try JSONParser.parse("1e3").doubleValue == 1000)
    #expect(try JSONParser.parse("-2.5E-3").doubleValue == -0.0025)
    #expect(try JSONParser.parse("0.1").doubleValue == 0.1)
    #expect(try JSONParser.parse("1e400").doubleValue == .infinity)
    #expect(try JSONParser.parse("9007199254740993").doubleValue == 9_007_199_254_740_992)
  }

  @Test("validates number text given in code")
  func textValidation() {
    #expect(JSONNumber(text: "12") != nil)
    #expect(JSONNumber(text: "-1.5e+7") != nil)
    #expect(JSONNumber(text: "01") == nil)
    #expect(JSONNumber(text: "1.") == nil)
    #expect(JSONNumber(text: "NaN") == nil)
    #expect(JSONNumber(text: " 1") == nil)
    #expect(JSONNumber(Double.nan) == nil)
    #expect(JSONNumber(Double.infinity) == nil)
    #expect(JSONNumber(0.25)?.text == "0.25")
    #expect(JSONNumber(-7).text == "-7")
    #expect(JSONNumber(UInt64.max).text == "18446744073709551615")
  }
}
