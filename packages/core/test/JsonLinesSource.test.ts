import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { JsonLinesSource, Partition, type Source, SourceError, Utf8 } from "@sluice/core"
import { Effect, Exit, FileSystem, Layer, PlatformError, Stream } from "effect"
import * as fc from "fast-check"

const day = Partition.makeUnsafe("2024-03-01")

const collect = (chunks: ReadonlyArray<string>) =>
  Effect.runSync(Stream.runCollect(JsonLinesSource.linesToRecords(Stream.fromIterable(chunks))))

/** Only JSON whitespace (space, tab, CR): what a source skips as blank. */
const jsonBlank = /^[ \t\r]*$/

/** The reference: split the whole text on "\n", drop one trailing "\r", keep non-blank lines. */
const reference = (text: string) =>
  text.split("\n").flatMap((raw, i) => {
    const payload = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    return jsonBlank.test(payload) ? [] : [{ payload, position: i + 1 }]
  })

const withDir = <A, E>(f: (dir: string, fs: FileSystem.FileSystem) => Effect.Effect<A, E, FileSystem.FileSystem>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    return yield* f(dir, fs)
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))

const reasonOf = <A>(exit: Exit.Exit<A, SourceError.SourceError>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  assert.isDefined(error)
  return (error as { readonly error: SourceError.SourceError }).error.reason
}

/** `input` cut at the given points (taken modulo its length), without empty pieces. */
const cutAt = <T extends string | Uint8Array>(input: T, cuts: ReadonlyArray<number>): Array<T> => {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].toSorted((a, b) => a - b)
  const pieces: Array<T> = []
  let from = 0
  for (const p of [...points, input.length]) {
    if (p > from) pieces.push(input.slice(from, p) as T)
    from = p
  }
  return pieces
}

describe("JsonLinesSource.linesToRecords", () => {
  it("splits lines, keeps physical positions, handles CRLF, blank lines and a last line without newline", () => {
    const records = collect(["{\"a\":1}\r\n", "\n  \t\r\n{\"a\"", ":2}\n\n{\"a\":3}"])
    assert.deepStrictEqual(records, [
      { payload: "{\"a\":1}", position: 1 },
      { payload: "{\"a\":2}", position: 4 },
      { payload: "{\"a\":3}", position: 6 }
    ])
  })

  it("keeps a lone \\r inside a line (only \\n ends a line)", () => {
    assert.deepStrictEqual(collect(["a\rb\n", "c\r", "\r\n"]), [{ payload: "a\rb", position: 1 }, {
      payload: "c\r",
      position: 2
    }])
  })

  it("emits nothing for empty input or only blank lines", () => {
    assert.deepStrictEqual(collect([]), [])
    assert.deepStrictEqual(collect(["\n\r\n", "   \n", "\t \r\r\n"]), [])
  })

  it("keeps a line of white space that is not JSON whitespace: a record (InvalidJson), never dropped", () => {
    const lines = ["\f", "\v", "\u00a0", "\uFEFF", "\u2028", " \u3000 "]
    assert.deepStrictEqual(
      collect([lines.join("\n")]),
      lines.map((payload, i) => ({ payload, position: i + 1 }))
    )
  })

  it("gives the same records however the text is cut into chunks", () => {
    const text = fc.string({ unit: fc.constantFrom("a", "{", "\"", " ", "\n", "\r", "é", "😀", "\t"), maxLength: 200 })
    fc.assert(fc.property(text, fc.array(fc.nat(), { maxLength: 10 }), (input, cuts) => {
      assert.deepStrictEqual(collect(cutAt(input, cuts)), reference(input))
    }))
  })

  it("keeps invalid UTF-8 lines as their bytes (never U+FFFD), and multi-byte characters split across chunks", () => {
    const bytes = new TextEncoder().encode("{\"x\":\"é😀\"}\n")
    const chunks = [bytes.slice(0, 8), bytes.slice(8), new Uint8Array([0xff, 0xfe, 0x0a])]
    for (const pieces of [chunks, chunks.map((chunk) => Buffer.from(chunk))]) {
      const records = Effect.runSync(Stream.runCollect(JsonLinesSource.bytesToRecords(Stream.fromIterable(pieces))))
      assert.deepStrictEqual(records, [
        { payload: "{\"x\":\"é😀\"}", position: 1 },
        { payload: "\\xFF\\xFE", position: 2, invalidBytes: new Uint8Array([0xff, 0xfe]) }
      ])
    }
  })
})

describe("JsonLinesSource.bytesToRecords", () => {
  const fromBytes = (chunks: ReadonlyArray<Uint8Array>) =>
    Effect.runSync(Stream.runCollect(JsonLinesSource.bytesToRecords(Stream.fromIterable(chunks))))
  /**
   * The reference: decode all the bytes at once, then split the text. (Node's streaming decoder,
   * behind `Stream.decodeText`, also drops a BOM that follows a character cut across chunks,
   * as in `[0xe2] [0x82 0xef 0xbb 0xbf]`; the Encoding standard drops it at the start only.)
   */
  const viaText = (bytes: Uint8Array) => collect([new TextDecoder().decode(bytes)].filter((t) => t.length > 0))
  /**
   * The reference with invalid UTF-8: split the bytes on `\n` and decode each line strictly; a line
   * that fails is kept as its bytes (and the escape of them), whatever it holds.
   */
  const viaLines = (bytes: Uint8Array) => {
    const out: Array<Source.RawRecord> = []
    let from = 0
    let line = 0
    while (from <= bytes.length) {
      const newline = bytes.indexOf(10, from)
      const end = newline === -1 ? bytes.length : newline
      if (newline === -1 && end === from) break
      const to = end > from && bytes[end - 1] === 13 ? end - 1 : end
      const raw = bytes.slice(from, to)
      line++
      try {
        const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: line !== 1 }).decode(raw)
        if (!jsonBlank.test(text)) out.push({ payload: text, position: line })
      } catch {
        out.push({ payload: Utf8.escape(raw), position: line, invalidBytes: raw })
      }
      from = end + 1
    }
    return out
  }
  const encode = (text: string) => Array.from(new TextEncoder().encode(text))
  /** Pieces of bytes: ASCII, line ends, blanks, multi-byte characters, invalid and cut sequences, BOMs. */
  const unit = fc.constantFrom<ReadonlyArray<number>>(
    encode("{"),
    encode("a"),
    encode("\""),
    encode(" "),
    encode("\t"),
    encode("\n"),
    encode("\r"),
    encode("\r\n"),
    encode("é"),
    encode("😀"),
    encode("\u00a0"),
    encode("\f"),
    encode("\u2028"),
    [0xef, 0xbb, 0xbf],
    [0xff],
    [0x80],
    [0xe2, 0x82],
    [0xf0, 0x9f],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    encode("\uFFFD"),
    encode("\\x41")
  )

  it("gives the same records as decoding line by line strictly (the whole stream when valid), however the bytes are cut", () => {
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 80 }), fc.array(fc.nat(), { maxLength: 12 }), (units, cuts) => {
        const bytes = Uint8Array.from(units.flat())
        const chunks = cutAt(bytes, cuts)
        assert.deepStrictEqual(fromBytes(chunks), viaLines(bytes))
        // Node's Buffers, as its file streams give them, take another way to decode (`utf8Slice`)
        assert.deepStrictEqual(fromBytes(chunks.map((chunk) => Buffer.from(chunk))), viaLines(bytes))
        if (Utf8.firstInvalid(bytes) === -1) assert.deepStrictEqual(fromBytes(chunks), viaText(bytes))
      }),
      { numRuns: 2_000 }
    )
  })

  it("drops a byte order mark at the start of the stream only, even when it is cut", () => {
    const bom = [0xef, 0xbb, 0xbf]
    const bytes = Uint8Array.from([...bom, ...encode("{\"a\":1}\n"), ...bom, ...encode("{}\n")])
    assert.deepStrictEqual(fromBytes([bytes.slice(0, 1), bytes.slice(1, 2), bytes.slice(2)]), [
      { payload: "{\"a\":1}", position: 1 },
      { payload: "\uFEFF{}", position: 2 }
    ])
  })

  it("a line cut across many chunks, and a last line without a newline", () => {
    const text = `{"long":"${"x".repeat(1000)}é"}\r\n{"last":true}`
    const bytes = new TextEncoder().encode(text)
    const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.slice(i * 7, i * 7 + 7))
    assert.deepStrictEqual(fromBytes(chunks), [
      { payload: `{"long":"${"x".repeat(1000)}é"}`, position: 1 },
      { payload: "{\"last\":true}", position: 2 }
    ])
  })
})

describe("JsonLinesSource.make", () => {
  it.effect("reads <dir>/YYYY-MM-DD.jsonl for the partition", () =>
    withDir((dir, fs) =>
      Effect.gen(function*() {
        yield* fs.writeFileString(`${dir}/2024-03-01.jsonl`, "{\"n\":1}\r\n\r\n{\"n\":2}\r\n{\"n\":3}")
        yield* fs.writeFileString(`${dir}/2024-03-02.jsonl`, "{\"n\":99}\n")
        const source = JsonLinesSource.make({ directory: dir })
        assert.strictEqual(source.location, dir)
        const records = yield* Stream.runCollect(source.extract(day))
        assert.deepStrictEqual(records, [
          { payload: "{\"n\":1}", position: 1 },
          { payload: "{\"n\":2}", position: 3 },
          { payload: "{\"n\":3}", position: 4 }
        ])
      })
    ))

  it.effect("a missing file is NotFound (permanent)", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const exit = yield* Stream.runCollect(JsonLinesSource.make({ directory: dir }).extract(day)).pipe(Effect.exit)
        const reason = reasonOf(exit)
        assert.strictEqual(reason._tag, "NotFound")
        assert.isFalse(reason.isRetryable)
      })
    ))

  it.effect("a directory that does not exist, or is a file, is MalformedConfig (permanent)", () =>
    withDir((dir, fs) =>
      Effect.gen(function*() {
        const missing = yield* Stream.runCollect(JsonLinesSource.make({ directory: `${dir}/nope` }).extract(day)).pipe(
          Effect.exit
        )
        assert.strictEqual(reasonOf(missing)._tag, "MalformedConfig")
        yield* fs.writeFileString(`${dir}/file`, "")
        const notDir = yield* Stream.runCollect(JsonLinesSource.make({ directory: `${dir}/file` }).extract(day)).pipe(
          Effect.exit
        )
        assert.strictEqual(reasonOf(notDir)._tag, "MalformedConfig")
      })
    ))

  it.effect("a partition path that is a directory is MalformedConfig", () =>
    withDir((dir, fs) =>
      Effect.gen(function*() {
        yield* fs.makeDirectory(`${dir}/2024-03-01.jsonl`)
        const exit = yield* Stream.runCollect(JsonLinesSource.make({ directory: dir }).extract(day)).pipe(Effect.exit)
        assert.strictEqual(reasonOf(exit)._tag, "MalformedConfig")
        // the message names the file and the system's error, not the descriptor the read used
        assert.match(reasonOf(exit).message, new RegExp(`${dir}/2024-03-01\\.jsonl: EISDIR`))
      })
    ))

  it.effect("maps file-system failures by their tag", () =>
    Effect.sync(() => {
      const reason = (tag: "Busy" | "Unknown" | "PermissionDenied") =>
        JsonLinesSource.fromPlatformError(
          "x",
          PlatformError.systemError({ _tag: tag, module: "FileSystem", method: "test" })
        ).reason
      assert.strictEqual(reason("Busy")._tag, "Timeout")
      assert.isTrue(reason("Busy").isRetryable)
      assert.strictEqual(reason("Unknown")._tag, "ConnectionReset")
      assert.strictEqual(reason("PermissionDenied")._tag, "MalformedConfig")
    }))

  it.effect("streams a big file: taking a few records reads only a few chunks, and a full read sees every line", () =>
    withDir((dir, fs) =>
      Effect.gen(function*() {
        const lines = 200_000
        const line = (i: number) => JSON.stringify({ i, pad: "x".repeat(80) })
        const content = Array.from({ length: lines }, (_, i) => line(i)).join("\n") + "\n"
        yield* fs.writeFileString(`${dir}/2024-03-01.jsonl`, content)
        let bytesRead = 0
        let readWhole = false
        const counting = Layer.succeed(FileSystem.FileSystem, {
          ...fs,
          readFile: (path) => Effect.sync(() => (readWhole = true)).pipe(Effect.andThen(fs.readFile(path))),
          readFileString: (path, encoding) =>
            Effect.sync(() => (readWhole = true)).pipe(Effect.andThen(fs.readFileString(path, encoding))),
          stream: (path, options) =>
            fs.stream(path, options).pipe(Stream.tap((b) => Effect.sync(() => (bytesRead += b.length))))
        })
        const source = JsonLinesSource.make({ directory: dir, chunkSize: 16 * 1024 })
        const first = yield* Stream.runCollect(Stream.take(source.extract(day), 3)).pipe(Effect.provide(counting))
        assert.deepStrictEqual(first.map((r) => r.payload), [line(0), line(1), line(2)])
        assert.isBelow(bytesRead, 16 * 1024 * 8, "only a few chunks are read for three records")
        assert.isAbove(content.length, 16 * 1024 * 1000)

        bytesRead = 0
        const count = yield* Stream.runFold(
          source.extract(day),
          () => ({ n: 0, ok: true }),
          (acc, r) => ({ n: acc.n + 1, ok: acc.ok && r.position === acc.n + 1 && r.payload === line(acc.n) })
        ).pipe(Effect.provide(counting))
        assert.deepStrictEqual(count, { n: lines, ok: true })
        assert.strictEqual(bytesRead, content.length)
        assert.isFalse(readWhole)
      })
    ))
})
