import { assert, describe, it } from "@effect/vitest"
import { Utf8 } from "@sluice/core"
import * as fc from "fast-check"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"

const bytes = (...values: ReadonlyArray<number>) => Uint8Array.from(values)
const utf8 = (text: string) => new TextEncoder().encode(text)
const concat = (...parts: ReadonlyArray<Uint8Array>) => Uint8Array.from(parts.flatMap((p) => [...p]))

/** Bytes made of pieces that stress the escape: text, backslashes, hex digits, invalid and cut sequences. */
const tricky = fc.array(
  fc.oneof(
    fc.constantFrom(
      utf8("\\"),
      utf8("x"),
      utf8("X"),
      utf8("F"),
      utf8("f"),
      utf8("0"),
      utf8("g"),
      utf8("\\x41"),
      utf8("é"),
      utf8("😀"),
      utf8("\uFFFD"),
      utf8("\uFEFF"),
      bytes(0xff),
      bytes(0x80),
      bytes(0xc0, 0xaf),
      bytes(0xe2, 0x82),
      bytes(0xed, 0xa0, 0x80),
      bytes(0xf4, 0x90, 0x80, 0x80),
      bytes(0xf0, 0x9f),
      bytes(0)
    ),
    fc.uint8Array({ maxLength: 4 })
  ),
  { maxLength: 40 }
).map((parts) => concat(...parts))

describe("Utf8", () => {
  it("escapes each invalid byte as \\xHH and keeps valid text as is", () => {
    // a lone 0xFF, a truncated sequence, an overlong '/', a UTF-16 surrogate encoded in UTF-8, above U+10FFFF
    assert.strictEqual(Utf8.escape(concat(utf8("{\"a\":\""), bytes(0xff), utf8("\"}"))), "{\"a\":\"\\xFF\"}")
    assert.strictEqual(Utf8.escape(concat(utf8("é"), bytes(0xe2, 0x82), utf8("!"))), "é\\xE2\\x82!")
    assert.strictEqual(Utf8.escape(bytes(0xc0, 0xaf)), "\\xC0\\xAF")
    assert.strictEqual(Utf8.escape(bytes(0xed, 0xa0, 0x80)), "\\xED\\xA0\\x80")
    assert.strictEqual(Utf8.escape(bytes(0xf4, 0x90, 0x80, 0x80)), "\\xF4\\x90\\x80\\x80")
    assert.strictEqual(Utf8.escape(utf8("{\"a\":\"é😀\\n\\\"\"}")), "{\"a\":\"é😀\\n\\\"\"}")
    assert.strictEqual(Utf8.escape(new Uint8Array(0)), "")
  })

  it("writes a backslash that would read as an escape as \\x5C, and only that one", () => {
    assert.strictEqual(Utf8.escape(utf8("\\xFF")), "\\x5CxFF")
    assert.strictEqual(Utf8.escape(utf8("\\x4g \\u00e9 \\\\")), "\\x4g \\u00e9 \\\\")
    assert.deepStrictEqual(Utf8.unescape("\\x5CxFF"), utf8("\\xFF"))
  })

  it("unescapes either case of hex digits, and leaves other backslashes", () => {
    assert.deepStrictEqual(
      Utf8.unescape("a\\xffb\\xFF\\x4"),
      concat(utf8("a"), bytes(0xff), utf8("b"), bytes(0xff), utf8("\\x4"))
    )
  })

  it("finds the first invalid byte, and decodes strictly", () => {
    assert.strictEqual(Utf8.firstInvalid(utf8("é😀")), -1)
    assert.strictEqual(Utf8.firstInvalid(concat(utf8("aé"), bytes(0xe2, 0x82, 0x41))), 3)
    assert.strictEqual(Utf8.decode(bytes(0x7b, 0xff)), undefined)
    assert.strictEqual(Utf8.decode(concat(utf8("\uFEFF{}"))), "\uFEFF{}")
    assert.strictEqual(Utf8.describeInvalid(bytes(0x41, 0xc0, 0xaf)), "invalid UTF-8: byte 0xC0 at offset 1")
  })

  it("unescape(escape(bytes)) = bytes, for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        assert.deepStrictEqual(Utf8.unescape(Utf8.escape(input)), input)
      }),
      { numRuns: 2_000 }
    )
  })

  it("unescape(escape(bytes)) = bytes, for bytes mixing text, backslashes and invalid sequences", () => {
    fc.assert(
      fc.property(tricky, (input) => {
        assert.deepStrictEqual(Utf8.unescape(Utf8.escape(input)), input)
      }),
      { numRuns: 2_000 }
    )
  })

  it("agrees with the strict decoder, keeps valid UTF-8 unchanged, and is always well-formed text", () => {
    fc.assert(
      fc.property(tricky, (input) => {
        const text = Utf8.decode(input)
        assert.strictEqual(Utf8.firstInvalid(input) === -1, text !== undefined)
        if (text !== undefined && !/\\x[0-9A-Fa-f]{2}/.test(text)) assert.strictEqual(Utf8.escape(input), text)
        assert.isFalse(/\p{Cs}/u.test(Utf8.escape(input)), "no lone surrogate")
      }),
      { numRuns: 2_000 }
    )
  })
})

describe("Utf8.escape of a long line", () => {
  it("escapes 8 MiB of invalid bytes in a heap of 96 MB: its text is built once, not byte by byte", () => {
    // a string appended to per escaped byte is a rope of a node per byte: ~0.5 GB for 8 MiB, out of memory here
    const module = Path.resolve(import.meta.dirname, "../src/Utf8.ts")
    const script = `const { escape } = await import(${JSON.stringify(module)})
const bytes = new Uint8Array(8 * 1024 * 1024).fill(0xff)
bytes.set(new TextEncoder().encode("{\\"a\\":\\"é"), 0)
const text = escape(bytes)
process.stdout.write(JSON.stringify([text.length, text.slice(0, 15), text.slice(-8)]))`
    const child = ChildProcess.spawnSync(process.execPath, [
      "--max-old-space-size=96",
      "--input-type=module",
      "-e",
      script
    ], {
      encoding: "utf8",
      timeout: 60_000
    })
    assert.strictEqual(
      child.status,
      0,
      child.stderr.split("\n").find((l) => /heap|memory|Error/.test(l)) ?? child.stderr
    )
    assert.deepStrictEqual(JSON.parse(child.stdout), [
      (8 * 1024 * 1024 - 8) * 4 + 7,
      "{\"a\":\"é\\xFF\\xFF",
      "\\xFF\\xFF"
    ])
  }, 90_000)
})
