import Testing

@testable import JSON

@Suite("JSON writer")
struct JSONWriterTests {
  @Test("compact output has no whitespace and keeps member order")
  func compact() {
    let value: JSONValue = ["b": [1, 2, ["x": nil]], "a": "s", "c": true, "d": 0.5, "e": [], "f": [:]]
    #expect(JSONWriter().string(value) == #"{"b":[1,2,{"x":null}],"a":"s","c":true,"d":0.5,"e":[],"f":{}}"#)
  }

  @Test("a writer's object keeps its members in order; a key given twice stops the program, naming the key")
  func uniqueMembers() async {
    #expect(JSONWriter().string(.object(members: [("b", 1), ("a", "x")])) == #"{"b":1,"a":"x"}"#)
    await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
      _ = JSONObject(uniqueMembers: [("k", .null), ("j", .null), ("k", .bool(true))])
    }.map { result in
      #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("the key 'k' appears twice"))
    }
  }

  @Test("pretty output indents by two spaces and sorts keys on request")
  func pretty() {
    let value: JSONValue = ["b": [1, 2], "a": ["z": "y"], "e": [], "f": [:]]
    let expected = """
      {
        "a": {
          "z": "y"
        },
        "b": [
          1,
          2
        ],
        "e": [],
        "f": {}
      }
      """
    #expect(JSONWriter(pretty: true, sortedKeys: true).string(value) == expected)
  }

  @Test("escapes only what RFC 8259 requires, like serde_json")
  func escaping() {
    let value: JSONValue = .string("a/b\"c\\d\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}é😀")
    #expect(JSONWriter().string(value) == "\"a/b\\\"c\\\\d\\n\\t\\r\\b\\f\\u0001\\u001f\u{7f}é😀\"")
  }

  @Test("sorted keys use code point order")
  func sortOrder() {
    let value: JSONValue = ["é": 1, "z": 2, "Z": 3, "a": 4, "😀": 5, "\u{FFFF}": 6]
    #expect(JSONWriter(sortedKeys: true).string(value) == #"{"Z":3,"a":4,"z":2,"é":1,"￿":6,"😀":5}"#)
  }

  @Test("round trips parse -> write -> parse, writing numbers from their text")
  func roundTrip() throws {
    let text = #"{"n":[0,-0,1e3,8.0,18446744073709551615,-1.25E-7],"s":"\u0000 \" \\ / ☃ 😀","o":{"k":[{},[],null,true,false]}}"#
    let value = try JSONParser.parse(text)
    for writer in [JSONWriter(), JSONWriter(pretty: true)] {
      #expect(try JSONParser.parse(writer.bytes(value)) == value)
    }
    // Sorting changes member order (equality is ordered), so compare the re-sorted forms.
    let sorted = JSONWriter(sortedKeys: true)
    let sortedText = sorted.string(value)
    #expect(try sorted.string(JSONParser.parse(JSONWriter(pretty: true, sortedKeys: true).bytes(value))) == sortedText)
    #expect(sortedText.hasPrefix(#"{"n":"#) && sortedText.contains(#"},"s":"#))
    let compact = JSONWriter().string(value)
    #expect(compact.contains(#"[0,-0,1e3,8.0,18446744073709551615,-1.25E-7]"#))
    #expect(try JSONWriter().string(JSONParser.parse(compact)) == compact)
  }

  @Test("object subscript assignment replaces in place and removes")
  func objectMutation() {
    var object = JSONObject()
    object["a"] = 1
    object["b"] = 2
    object["a"] = 3
    #expect(object.keys == ["a", "b"])
    #expect(object["a"] == 3)
    object["a"] = nil
    #expect(object.keys == ["b"])
    #expect(JSONObject(members: [("x", 1), ("x", 2)]) == nil)
  }
}
