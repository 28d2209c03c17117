#!/usr/bin/env python3
"""Writes the safetensors malformed corpus: Tests/SafeTensorsTests/Malformed/*.safetensors + manifest.json.

Pure standard library; deterministic (same bytes on every run). Each file breaks exactly one validation rule
(or, for `valid-*`, none). manifest.json maps file -> the `SafeTensorsError.rule` Smelt must report and
what the reference crate does with it. The Swift tests (MalformedCorpusTests) load every file and assert
the rule; the fuzzer uses the files as seeds.

    python3 scripts/make-malformed-corpus.py                 # regenerate
    python3 scripts/make-malformed-corpus.py --check-crate   # also confirm the "crate" column against the
                                                             # installed `safetensors` package (optional)
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "SafeTensorsTests", "Malformed")

cases = []  # (file, bytes, rule, crate, description)


def add(name, data, rule, crate, description):
    cases.append((name + ".safetensors", bytes(data), rule, crate, description))


def file_bytes(header, data=b"", n=None, pad=True):
    """8-byte little-endian N + header (str or bytes) + data. Pads with spaces to 8 unless pad=False."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def entry(dtype, shape, begin, end):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%s,%s]}' % (dtype, json.dumps(shape).replace(" ", ""), begin, end)


def header(**tensors):
    return "{" + ",".join('"%s":%s' % (k, v) for k, v in tensors.items()) + "}"


# A small valid file used for truncation: two tensors, metadata, 24 data bytes.
VALID_HEADER = '{"__metadata__":{"format":"pt"},"w":%s,"b":%s}' % (entry("F32", [2, 2], 0, 16), entry("BF16", [4], 16, 24))
VALID = file_bytes(VALID_HEADER, bytes(range(24)))
F32_4 = entry("F32", [1], 0, 4)

# Rule 1: fewer than 8 bytes.
add("header-too-small", b"\x05\x00\x00", "headerTooSmall", "HeaderTooSmall", "3-byte file")
add("empty", b"", "headerTooSmall", "HeaderTooSmall", "empty file")
# Rule 3: N > 100,000,000.
add("header-too-large", struct.pack("<Q", 100_000_001) + b"{}      ", "headerTooLarge", "HeaderTooLarge", "N = 100,000,001")
add("header-too-large-u64-max", b"\xff" * 8 + b"{}", "headerTooLarge", "HeaderTooLarge", "N = 2^64-1")
add("lfs-pointer",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 4956456840\n",
    "headerTooLarge", "HeaderTooLarge", "a Git LFS pointer instead of the file (hint: git lfs pull)")
add("html-page", b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body></body></html>\n",
    "headerTooLarge", "HeaderTooLarge", "an HTML error page saved under the file name")
add("zip-archive", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"archive/data.pkl" + bytes(16),
    "headerTooLarge", "HeaderTooLarge", "a zip (torch .pt) archive")
add("pickle", b"\x80\x02}q\x00(X\x06\x00\x00\x00weightq\x01", "headerTooLarge", "HeaderTooLarge", "a raw pickle")
# Rule 4: 8 + N past the end of the file.
add("invalid-header-length", file_bytes("{}", n=1000), "invalidHeaderLength", "InvalidHeaderLength", "N = 1000 in a 16-byte file")
# Rule 5: header not UTF-8.
add("invalid-utf8", file_bytes(b'{"a\xff":' + F32_4.encode() + b"}", bytes(4)), "invalidUTF8", "InvalidHeader", "0xFF in a tensor name")
add("invalid-utf8-overlong", file_bytes(b'{"a\xc0\xaf":' + F32_4.encode() + b"}", bytes(4)), "invalidUTF8", "InvalidHeader", "overlong encoding of '/'")
add("invalid-utf8-surrogate", file_bytes(b'{"a\xed\xa0\x80":' + F32_4.encode() + b"}", bytes(4)), "invalidUTF8", "InvalidHeader", "UTF-8-encoded surrogate U+D800")
add("invalid-utf8-in-padding", file_bytes(b"{}      \xff", pad=False), "invalidUTF8", "InvalidHeader", "0xFF in the padding")
# Rule 6: JSON syntax.
add("not-json", file_bytes("hello"), "invalidJSON", "InvalidHeaderDeserialization", "plain text header")
add("trailing-comma", file_bytes('{"a":%s,}' % F32_4, bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "trailing comma")
add("trailing-comma-in-shape", file_bytes('{"a":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}', bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "trailing comma in an array")
add("bom", file_bytes(b"\xef\xbb\xbf" + header(a=F32_4).encode(), bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "UTF-8 byte order mark before '{'")
NUL_PADDED = header(a=F32_4).encode()
NUL_PADDED += b"\x00" * (((8 - len(NUL_PADDED) % 8) % 8) or 8)
add("nul-padding", file_bytes(NUL_PADDED, bytes(4), pad=False), "invalidJSON", "InvalidHeaderDeserialization", "header padded with NUL instead of spaces")
add("trailing-garbage", file_bytes('{"a":%s} x' % F32_4, bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "text after the JSON object")
add("two-objects", file_bytes('{}{}'), "invalidJSON", "InvalidHeaderDeserialization", "two JSON values")
add("comment", file_bytes('{/* c */"a":%s}' % F32_4, bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "a /* */ comment")
add("single-quotes", file_bytes("{'a':%s}" % F32_4, bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "single-quoted key")
add("unterminated", file_bytes('{"a":{"dtype":"F32"'), "invalidJSON", "InvalidHeaderDeserialization", "JSON cut off")
add("too-deep", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":%s}}' % ("[" * 200 + "]" * 200), bytes(4)),
    "invalidJSON", "InvalidHeaderDeserialization", "200 nested arrays in an unknown field")
add("lone-surrogate", file_bytes('{"a\\ud800":%s}' % F32_4, bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "\\ud800 escape without its low half")
add("control-char-in-name", file_bytes(b'{"a\x01b":' + F32_4.encode() + b"}", bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "raw U+0001 in a string")
add("invalid-escape", file_bytes('{"a\\x":%s}' % F32_4, bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "\\x escape")
add("nan-in-shape", file_bytes('{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}', bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "NaN as a dimension")
add("leading-zero-offset", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,04]}}', bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "04 as an offset")
add("duplicate-field", file_bytes('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)), "invalidJSON", "InvalidHeaderDeserialization", "dtype twice in one entry")
# Rule 6: JSON types.
add("header-not-object", file_bytes("[]"), "headerNotObject", "InvalidHeaderDeserialization", "top-level array")
add("header-string", file_bytes('"x"'), "headerNotObject", "InvalidHeaderDeserialization", "top-level string")
add("entry-not-object", file_bytes('{"a":[0,4]}', bytes(4)), "invalidEntry", "InvalidHeaderDeserialization", "tensor entry is an array")
add("dtype-not-string", file_bytes('{"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}', bytes(4)), "invalidEntry", "InvalidHeaderDeserialization", "dtype is a number")
add("missing-dtype", file_bytes('{"a":{"shape":[1],"data_offsets":[0,4]}}', bytes(4)), "missingField", "InvalidHeaderDeserialization", "no dtype")
add("missing-shape", file_bytes('{"a":{"dtype":"F32","data_offsets":[0,4]}}', bytes(4)), "missingField", "InvalidHeaderDeserialization", "no shape")
add("missing-data-offsets", file_bytes('{"a":{"dtype":"F32","shape":[1]}}', bytes(4)), "missingField", "InvalidHeaderDeserialization", "no data_offsets")
add("unknown-dtype", file_bytes(header(a=entry("F128", [1], 0, 16)), bytes(16)), "unknownDType", "InvalidHeaderDeserialization", "F128")
add("lowercase-dtype", file_bytes(header(a=entry("f32", [1], 0, 4)), bytes(4)), "unknownDType", "InvalidHeaderDeserialization", "f32 (dtype names are case-sensitive)")
add("torch-dtype-name", file_bytes(header(a=entry("float16", [1], 0, 2)), bytes(2)), "unknownDType", "InvalidHeaderDeserialization", "float16 (a torch name)")
add("shape-float", file_bytes('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', bytes(8)), "invalidShape", "InvalidHeaderDeserialization", "2.0 as a dimension")
add("shape-exponent", file_bytes('{"a":{"dtype":"U8","shape":[1e1],"data_offsets":[0,10]}}', bytes(10)), "invalidShape", "InvalidHeaderDeserialization", "1e1 as a dimension")
add("shape-negative", file_bytes('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', bytes(4)), "invalidShape", "InvalidHeaderDeserialization", "-1 as a dimension")
add("shape-not-array", file_bytes('{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}', bytes(4)), "invalidShape", "InvalidHeaderDeserialization", "shape is a string")
add("shape-above-u64", file_bytes('{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}', bytes(4)), "invalidShape", "InvalidHeaderDeserialization", "dimension 2^64")
add("shape-null-dim", file_bytes('{"a":{"dtype":"F32","shape":[null],"data_offsets":[0,4]}}', bytes(4)), "invalidShape", "InvalidHeaderDeserialization", "null dimension")
add("offsets-float", file_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', bytes(8)), "invalidDataOffsets", "InvalidHeaderDeserialization", "8.0 as an offset")
add("offsets-exponent", file_bytes('{"a":{"dtype":"U8","shape":[1000],"data_offsets":[0,1e3]}}', bytes(1000)), "invalidDataOffsets", "InvalidHeaderDeserialization", "1e3 as an offset")
add("offsets-negative", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', bytes(4)), "invalidDataOffsets", "InvalidHeaderDeserialization", "negative offset")
add("offsets-three", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', bytes(4)), "invalidDataOffsets", "InvalidHeaderDeserialization", "three offsets")
add("offsets-one", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}', bytes(4)), "invalidDataOffsets", "InvalidHeaderDeserialization", "one offset")
add("offsets-string", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', bytes(4)), "invalidDataOffsets", "InvalidHeaderDeserialization", "offsets as strings")
add("metadata-non-string", file_bytes('{"__metadata__":{"format":"pt","step":1000},"a":%s}' % F32_4, bytes(4)), "invalidMetadata", "InvalidHeaderDeserialization", "metadata value is a number")
add("metadata-nested", file_bytes('{"__metadata__":{"config":{"a":"b"}},"a":%s}' % F32_4, bytes(4)), "invalidMetadata", "InvalidHeaderDeserialization", "metadata value is an object")
add("metadata-not-object", file_bytes('{"__metadata__":"pt","a":%s}' % F32_4, bytes(4)), "invalidMetadata", "InvalidHeaderDeserialization", "metadata is a string")
add("duplicate-tensor", file_bytes('{"a":%s,"b":%s,"a":%s}' % (F32_4, entry("F32", [1], 4, 8), F32_4), bytes(8)),
    "duplicateTensor", "accepts", "tensor 'a' twice (the crate silently keeps the last)")
add("duplicate-tensor-conflicting", file_bytes('{"a":%s,"a":%s}' % (F32_4, entry("F32", [2], 0, 8)), bytes(8)),
    "duplicateTensor", "accepts", "tensor 'a' twice with different shapes (the crate keeps the last)")
add("duplicate-metadata", file_bytes('{"__metadata__":{"format":"pt"},"__metadata__":null,"a":%s}' % F32_4, bytes(4)),
    "invalidJSON", "InvalidHeaderDeserialization", "__metadata__ twice")
# Rule 7: contiguous offsets from 0.
add("offset-gap", file_bytes(header(a=entry("F32", [1], 0, 4), b=entry("F32", [1], 8, 12)), bytes(12)), "invalidOffset", "InvalidOffset", "4-byte hole between a and b")
add("offset-overlap", file_bytes(header(a=entry("F32", [2], 0, 8), b=entry("F32", [2], 4, 12)), bytes(12)), "invalidOffset", "InvalidOffset", "b starts inside a")
add("offset-alias", file_bytes(header(a=entry("F32", [2], 0, 8), b=entry("F32", [2], 0, 8)), bytes(8)), "invalidOffset", "InvalidOffset", "two tensors on the same bytes")
add("offset-not-from-zero", file_bytes(header(a=entry("F32", [1], 4, 8)), bytes(8)), "invalidOffset", "InvalidOffset", "first tensor starts at 4")
add("offset-reversed", file_bytes(header(a=entry("F32", [1], 0, 4), b=entry("F32", [1], 4, 0)), bytes(8)), "invalidOffset", "InvalidOffset", "b ends before it starts")
# Rule 8: overflow.
add("shape-overflow", file_bytes(header(a=entry("U8", [4294967296, 4294967296, 4294967296], 0, 0))), "validationOverflow", "ValidationOverflow", "element count 2^96")
add("shape-bits-overflow", file_bytes(header(a=entry("U64", [2305843009213693952], 0, 0))), "validationOverflow", "ValidationOverflow", "2^61 elements of 64 bits")
add("shape-overflow-before-zero", file_bytes(header(a=entry("U8", [4294967296, 4294967296, 0], 0, 0))), "validationOverflow", "ValidationOverflow", "overflow before a zero dimension")
add("shape-int-overflow-before-zero", file_bytes(header(a=entry("U8", [4294967295, 4294967296, 0], 0, 0))), "validationOverflow", "accepts", "partial product 2^64-2^32 exceeds Int.max before a zero dimension (found by fuzzing)")
add("shape-huge-dim-after-zero", file_bytes(header(a=entry("U8", [0, 9223372036854775808], 0, 0))), "validationOverflow", "accepts",
    "empty tensor with a dimension of 2^63 (the crate accepts; Smelt keeps dimensions in Int)")
# Rule 9: sub-byte sizes.
add("misaligned-slice", file_bytes(header(a=entry("F4", [3], 0, 2)), bytes(2)), "misalignedSlice", "MisalignedSlice", "3 F4 elements = 12 bits")
add("misaligned-slice-f6", file_bytes(header(a=entry("F6_E2M3", [2], 0, 2)), bytes(2)), "misalignedSlice", "MisalignedSlice", "2 F6 elements = 12 bits")
# Rule 10: offsets vs shape × dtype.
add("tensor-invalid-info", file_bytes(header(a=entry("F32", [2, 2], 0, 12)), bytes(12)), "tensorInvalidInfo", "TensorInvalidInfo", "F32 [2,2] in 12 bytes")
add("tensor-invalid-info-sub-byte", file_bytes(header(a=entry("F4", [4], 0, 4)), bytes(4)), "tensorInvalidInfo", "TensorInvalidInfo", "F4 [4] in 4 bytes (needs 2)")
add("tensor-invalid-info-scalar", file_bytes(header(a=entry("F32", [], 0, 0))), "tensorInvalidInfo", "TensorInvalidInfo", "a scalar with no bytes")
# Rule 11: coverage of the file.
add("trailing-bytes", VALID + b"\x00" * 4, "metadataIncompleteBuffer", "MetadataIncompleteBuffer", "4 bytes after the last tensor")
add("offsets-past-eof", file_bytes(header(a=entry("F32", [4], 0, 16)), bytes(8)), "metadataIncompleteBuffer", "MetadataIncompleteBuffer", "tensor ends 8 bytes past the end of the file")
add("offsets-far-past-eof", file_bytes(header(a=entry("U8", [1152921504606846976], 0, 1152921504606846976))), "metadataIncompleteBuffer", "MetadataIncompleteBuffer", "a 2^60-byte tensor in a tiny file")
add("offsets-u64-max", file_bytes(header(a=entry("U8", [0], 0, 0), b=entry("U8", [18446744073709551615], 0, 18446744073709551615))), "validationOverflow", "ValidationOverflow", "a (2^64-1)-byte tensor: bit count overflows")
# Truncations of VALID at several points.
n_valid = len(VALID) - 24
for cut, rule, crate in [(0, "headerTooSmall", "HeaderTooSmall"), (4, "headerTooSmall", "HeaderTooSmall"),
                         (8, "invalidHeaderLength", "InvalidHeaderLength"), (8 + n_valid // 2, "invalidHeaderLength", "InvalidHeaderLength"),
                         (len(VALID) - 24, "metadataIncompleteBuffer", "MetadataIncompleteBuffer"),
                         (len(VALID) - 1, "metadataIncompleteBuffer", "MetadataIncompleteBuffer")]:
    add("truncated-at-%d" % cut, VALID[:cut], rule, crate, "the valid file cut to %d of %d bytes" % (cut, len(VALID)))

# Accepted files (rule "ok"): corner cases both Smelt and the crate must load.
add("valid-two-tensors", VALID, "ok", "accepts", "metadata + F32 + BF16")
add("valid-empty-header", file_bytes("{}"), "ok", "accepts", "no tensors")
add("valid-leading-whitespace", file_bytes("  \n" + header(a=F32_4), bytes(4)), "ok", "accepts", "whitespace before '{' (crate >= 0.8.0)")
add("valid-unaligned", file_bytes(header(a=entry("F32", [2], 0, 8)), bytes(8), pad=False), "ok", "accepts", "unpadded header: data not 8-aligned")
add("valid-zero-size-shared-offset", file_bytes(header(a=entry("F32", [0], 0, 0), b=entry("F32", [0, 5], 0, 0), c=entry("U8", [1], 0, 1)), b"\x07"), "ok", "accepts", "two empty tensors at the same offset")
add("valid-scalar", file_bytes(header(a=entry("F64", [], 0, 8)), bytes(8)), "ok", "accepts", "rank-0 tensor")
add("valid-metadata-null", file_bytes('{"__metadata__":null,"a":%s}' % F32_4, bytes(4)), "ok", "accepts", "__metadata__: null")
add("valid-unknown-field", file_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1,{"x":null}]}}', bytes(4)), "ok", "accepts", "unknown field inside an entry")
add("valid-f4-f6", file_bytes(header(a=entry("F6_E3M2", [4], 0, 3), b=entry("F4", [2, 3], 3, 6)), bytes(6)), "ok", "accepts", "sub-byte dtypes")
add("valid-escaped-name", file_bytes('{"a\\u0000b\\/\\u00e9\\ud83d\\ude00":%s}' % F32_4, bytes(4)), "ok", "accepts", "escapes in a tensor name")
add("valid-out-of-order", file_bytes(header(b=entry("F32", [1], 4, 8), a=entry("F32", [1], 0, 4)), bytes(8)), "ok", "accepts", "header order differs from data order")


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith(".safetensors"):
            os.remove(os.path.join(OUT, old))
    names = set()
    manifest = []
    for name, data, rule, crate, description in cases:
        assert name not in names, name
        names.add(name)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        manifest.append({"file": name, "rule": rule, "crate": crate, "description": description})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"generator": "scripts/make-malformed-corpus.py", "files": manifest}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote %d files to %s" % (len(cases), os.path.relpath(OUT, ROOT)))
    if "--check-crate" in sys.argv:
        check_crate()


# The Python binding reports the crate's error through its Display text.
CRATE_MESSAGES = {
    "HeaderTooSmall": "header too small",
    "HeaderTooLarge": "header too large",
    "InvalidHeaderLength": "invalid header length",
    "InvalidHeader": "invalid UTF-8 in header",
    "InvalidHeaderDeserialization": "invalid JSON in header",
    "InvalidOffset": "invalid offset for tensor",
    "ValidationOverflow": "overflow computing buffer size",
    "MisalignedSlice": "does not end up at a byte",
    "TensorInvalidInfo": "invalid shape, data type, or offset",
    "MetadataIncompleteBuffer": "incomplete metadata",
}


def check_crate():
    """Confirms the 'crate' column with the installed safetensors package (Rust crate via Python)."""
    import safetensors

    mismatches = 0
    for name, data, rule, crate, _ in cases:
        try:
            safetensors.deserialize(data)
            got = "accepts"
        except Exception as error:  # SafetensorError carries the Rust variant in its text
            got = str(error)
        ok = (got == "accepts") if crate == "accepts" else (CRATE_MESSAGES[crate] in got)
        if not ok:
            mismatches += 1
            print("MISMATCH %-45s expected %-28s got %s" % (name, crate, got[:120]))
    print("crate check (safetensors %s): %d mismatches" % (safetensors.__version__, mismatches))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
