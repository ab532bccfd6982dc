/**
 * HTTP sources: one `GET` per partition, the body read as JSON Lines or as a JSON array.
 *
 * The body is streamed: JSON Lines are split as they arrive, and a JSON array is split into its
 * top-level elements by a small incremental scanner, so neither form is held in memory whole.
 * Either way the bytes are decoded strictly: a line or element that is not valid UTF-8 keeps its
 * bytes and is dead-lettered as `InvalidEncoding` (see `Source.invalidUtf8`), never loaded with
 * U+FFFD in place of the bad bytes.
 * Every failure is mapped to a typed {@link SourceError.SourceError} reason by its type, status
 * or error code (never by message text); the source never retries by itself — the pipeline
 * runner retries the whole attempt when the reason is retryable.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Result, Schema, Stream } from "effect"
import { HttpClient, type HttpClientError, type HttpClientResponse } from "effect/http"
import * as JsonLinesSource from "./JsonLinesSource.ts"
import type { PartitionDate } from "./Partition.ts"
import * as Source from "./Source.ts"
import * as SourceError from "./SourceError.ts"
import * as Utf8 from "./Utf8.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The URL of a partition's data. */
  readonly url: (partition: PartitionDate) => string
  /** Names the source in errors (e.g. the endpoint without the partition); defaults to `"http"`. */
  readonly location?: string | undefined
  /**
   * Time allowed for the response headers, and then for each piece of the body (an idle timeout,
   * so that a large body that keeps arriving is never cut). 10 seconds by default.
   */
  readonly timeout?: Duration.Input | undefined
}

/**
 * The body format, chosen from the response's `content-type`.
 *
 * - `application/json` (and `+json` types): a JSON array, split into elements;
 * - `application/x-ndjson`, `application/jsonl`, `application/x-jsonlines`, any `text/*`, or no
 *   content type: JSON Lines;
 * - anything else: not a body of records (`InvalidResponse`).
 *
 * @since 0.1.0
 * @category models
 */
export type BodyFormat = "JsonArray" | "JsonLines"

/**
 * @since 0.1.0
 * @category guards
 */
export const bodyFormat = (contentType: string | undefined): BodyFormat | undefined => {
  if (contentType === undefined) return "JsonLines"
  const mime = contentType.split(";")[0]!.trim().toLowerCase()
  if (mime === "" || mime.startsWith("text/")) return "JsonLines"
  if (
    mime === "application/x-ndjson" || mime === "application/ndjson" || mime === "application/jsonl" ||
    mime === "application/x-jsonlines" || mime === "application/jsonlines"
  ) return "JsonLines"
  if (mime === "application/json" || (mime.startsWith("application/") && mime.endsWith("+json"))) return "JsonArray"
  return undefined
}

const nodeCodes = {
  refused: new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "EAI_AGAIN", "UND_ERR_CONNECT"]),
  reset: new Set([
    "ECONNRESET",
    "EPIPE",
    "ECONNABORTED",
    "ERR_STREAM_PREMATURE_CLOSE",
    "UND_ERR_SOCKET",
    "UND_ERR_CLOSED",
    "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
    "HPE_INVALID_CHUNK_SIZE"
  ]),
  timeout: new Set([
    "ETIMEDOUT",
    "ESOCKETTIMEDOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "UND_ERR_HEADERS_TIMEOUT",
    "UND_ERR_BODY_TIMEOUT"
  ]),
  config: new Set(["ENOTFOUND", "ERR_INVALID_URL", "ERR_INVALID_PROTOCOL", "ERR_TLS_CERT_ALTNAME_INVALID"])
}

type Kind = "refused" | "reset" | "timeout" | "config"

/** The error codes on a cause and its nested causes (`cause`, `errors` of an AggregateError). */
const codesOf = (cause: unknown): Array<string> => {
  const codes: Array<string> = []
  const seen = new Set<unknown>()
  const visit = (u: unknown, depth: number): void => {
    if (typeof u !== "object" || u === null || seen.has(u) || depth > 8) return
    seen.add(u)
    const record = u as { readonly code?: unknown; readonly cause?: unknown; readonly errors?: unknown }
    if (typeof record.code === "string") codes.push(record.code)
    visit(record.cause, depth + 1)
    if (Array.isArray(record.errors)) { for (const e of record.errors) visit(e, depth + 1) }
  }
  visit(cause, 0)
  return codes
}

const kindOf = (cause: unknown): Kind | undefined => {
  const codes = codesOf(cause)
  for (const kind of ["timeout", "refused", "reset", "config"] as const) {
    if (codes.some((code) => nodeCodes[kind].has(code))) return kind
  }
  return undefined
}

const reasonOfKind = (kind: Kind, message: string): SourceError.SourceErrorReason => {
  switch (kind) {
    case "refused":
      return new SourceError.ConnectionRefused({ message })
    case "reset":
      return new SourceError.ConnectionReset({ message })
    case "timeout":
      return new SourceError.Timeout({ message })
    case "config":
      return new SourceError.MalformedConfig({ message })
  }
}

const statusReason = (status: number, message: string): SourceError.SourceErrorReason =>
  status === 404 ? new SourceError.NotFound({ message }) : new SourceError.HttpStatus({ status, message })

/**
 * Maps an `HttpClientError` to a source failure.
 *
 * - `InvalidUrlError`, `EncodeError` → `MalformedConfig`;
 * - `TransportError` (no response) → by the Node/undici error code of its cause: `ECONNREFUSED`
 *   (and unreachable hosts, `EAI_AGAIN`) → `ConnectionRefused`; `ECONNRESET`, `EPIPE`, a socket
 *   closed by the other side → `ConnectionReset`; `ETIMEDOUT` and undici timeouts → `Timeout`;
 *   `ENOTFOUND` (the host does not exist) → `MalformedConfig`; an unknown code → `ConnectionRefused`
 *   (transient: no response was obtained);
 * - `DecodeError` (reading the body failed) → by code as above, `ConnectionReset` when unknown;
 * - `StatusCodeError` → `NotFound` for 404, else `HttpStatus`;
 * - `EmptyBodyError` → `InvalidResponse`.
 *
 * @since 0.1.0
 * @category errors
 */
export const fromHttpClientError = (
  location: string,
  error: HttpClientError.HttpClientError
): SourceError.SourceError => {
  const message = error.message
  const reason = ((): SourceError.SourceErrorReason => {
    const r = error.reason
    switch (r._tag) {
      case "InvalidUrlError":
      case "EncodeError":
        return new SourceError.MalformedConfig({ message })
      case "TransportError":
        return reasonOfKind(kindOf(r.cause) ?? "refused", message)
      case "DecodeError":
        return reasonOfKind(kindOf(r.cause) ?? "reset", message)
      case "StatusCodeError":
        return statusReason(r.response.status, message)
      case "EmptyBodyError":
        return new SourceError.InvalidResponse({ message })
    }
  })()
  return new SourceError.SourceError({ source: location, reason })
}

const isHttpUrl = (url: string): boolean => {
  if (!URL.canParse(url)) return false
  const protocol = new URL(url).protocol
  return protocol === "http:" || protocol === "https:"
}

// ---------------------------------------------------------------------------
// JSON array splitting
// ---------------------------------------------------------------------------

const End: unique symbol = Symbol("@sluice/core/HttpSource/End")

type Phase = "Start" | "FirstElement" | "NextElement" | "InElement" | "Done"

interface ArrayState {
  phase: Phase
  depth: number
  inString: boolean
  escape: boolean
  element: string
  position: number
}

const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff

/** `text` without the JSON whitespace after an element (before its `,` or `]`). */
const trimEnd = (text: string): string => {
  let end = text.length
  while (end > 0) {
    const c = text.charCodeAt(end - 1)
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    end--
  }
  return end === text.length ? text : text.slice(0, end)
}

/**
 * Splits the text of a JSON array into records, one per top-level element, as it streams in.
 * Each payload is the element's text as the body has it (the whitespace around it dropped), so a
 * dead letter keeps what was sent and a transform reads the numbers as written
 * (`Transform.fromSchema`'s `exactNumbers`: a re-serialized `19.990000000000000001` would be
 * `19.99`); positions are 1-based element indexes. A body that is not a JSON array (not starting with `[`, unterminated, an element that is
 * not valid JSON, trailing data) fails with `InvalidResponse` when the problem is reached.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { HttpSource } from "@sluice/core"
 *
 * const records = HttpSource.jsonArrayToRecords("example", Stream.make("[{\"a\": 1}, ", "2]"))
 * // { payload: "{\"a\": 1}", position: 1 }, { payload: "2", position: 2 }
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const jsonArrayToRecords = <E, R>(
  location: string,
  text: Stream.Stream<string, E, R>
): Stream.Stream<Source.RawRecord, E | SourceError.SourceError, R> => splitJsonArray(location, text, false)

/**
 * Splits the bytes of a JSON array into records, as {@link jsonArrayToRecords} splits its text, but
 * decoding them strictly: an element whose bytes are not valid UTF-8 is not altered (no U+FFFD) but
 * becomes `Source.invalidUtf8(bytes, position)` — its original bytes, its payload their `\xHH`
 * escape — and is dead-lettered as `InvalidEncoding`. Invalid bytes outside any element break the
 * array itself: `InvalidResponse`, as any other malformed body.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { HttpSource } from "@sluice/core"
 *
 * const records = HttpSource.jsonArrayBytesToRecords(
 *   "example",
 *   Stream.make(Uint8Array.of(0x5b, 0x22, 0xff, 0x22, 0x2c, 0x31, 0x5d)) // ["\xFF",1]
 * )
 * // { payload: "\"\\xFF\"", position: 1, invalidBytes: … }, { payload: "1", position: 2 }
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const jsonArrayBytesToRecords = <E, R>(
  location: string,
  bytes: Stream.Stream<Uint8Array, E, R>
): Stream.Stream<Source.RawRecord, E | SourceError.SourceError, R> =>
  splitJsonArray(location, decodeLossless(bytes), true)

// ---------------------------------------------------------------------------
// Lossless decoding: invalid bytes as lone surrogates
// ---------------------------------------------------------------------------

/** Decodes valid UTF-8 (throws otherwise), keeping a leading U+FEFF as the scanner skips it as space. */
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/**
 * The text of `bytes` with each byte that is not part of a valid UTF-8 sequence as the lone
 * surrogate U+DC00 + byte ("surrogateescape"). Strict decoding never gives a lone surrogate, so the
 * text says exactly which bytes were invalid, and {@link losslessBytes} gives the bytes back.
 */
const losslessText = (bytes: Uint8Array): string => {
  try {
    return fatalDecoder.decode(bytes)
  } catch {
    let out = ""
    let rest = bytes
    let bad = Utf8.firstInvalid(rest)
    while (bad !== -1) {
      out += fatalDecoder.decode(rest.subarray(0, bad)) + String.fromCharCode(0xdc00 + rest[bad]!)
      rest = rest.subarray(bad + 1)
      bad = Utf8.firstInvalid(rest)
    }
    return out + fatalDecoder.decode(rest)
  }
}

/**
 * Where the bytes of `bytes` stop being complete: the start of a multi-byte sequence cut at the end
 * of the chunk (its rest comes with the next chunk), else the end.
 */
const completeEnd = (bytes: Uint8Array): number => {
  const length = bytes.length
  for (let k = 1; k <= 3 && k <= length; k++) {
    const b = bytes[length - k]!
    if (b < 0x80) return length
    if (b >= 0xc0) return (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2) > k ? length - k : length
  }
  return length
}

/** {@link losslessText} over a stream of chunks, a sequence cut between two chunks decoded whole. */
const decodeLossless = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<string, E, R> =>
  Stream.mapAccumArray(
    bytes,
    (): { carry: Uint8Array } => ({ carry: new Uint8Array(0) }),
    (state, chunks) => {
      const out: Array<string> = []
      for (const chunk of chunks) {
        let whole = chunk
        if (state.carry.length > 0) {
          whole = new Uint8Array(state.carry.length + chunk.length)
          whole.set(state.carry)
          whole.set(chunk, state.carry.length)
        }
        const end = completeEnd(whole)
        state.carry = whole.slice(end)
        if (end > 0) out.push(losslessText(whole.subarray(0, end)))
      }
      return [state, out]
    },
    { onHalt: (state) => state.carry.length > 0 ? [losslessText(state.carry)] : [] }
  )

/** A lone surrogate: in lossless text, a byte that was not valid UTF-8. */
const loneSurrogate = /\p{Cs}/u
const loneSurrogates = /\p{Cs}/gu

const encoder = new TextEncoder()

/** The bytes {@link losslessText} was given. */
const losslessBytes = (text: string): Uint8Array => {
  const pieces: Array<Uint8Array> = []
  let from = 0
  for (const match of text.matchAll(loneSurrogates)) {
    pieces.push(encoder.encode(text.slice(from, match.index)), Uint8Array.of(match[0].charCodeAt(0) - 0xdc00))
    from = match.index + 1
  }
  pieces.push(encoder.encode(text.slice(from)))
  const out = new Uint8Array(pieces.reduce((n, piece) => n + piece.length, 0))
  let at = 0
  for (const piece of pieces) {
    out.set(piece, at)
    at += piece.length
  }
  return out
}

const splitJsonArray = <E, R>(
  location: string,
  text: Stream.Stream<string, E, R>,
  lossless: boolean
): Stream.Stream<Source.RawRecord, E | SourceError.SourceError, R> => {
  const invalid = (message: string) =>
    new SourceError.SourceError({ source: location, reason: new SourceError.InvalidResponse({ message }) })
  return text.pipe(
    Stream.concat(Stream.succeed(End)),
    Stream.mapAccumArrayEffect(
      (): ArrayState => ({
        phase: "Start",
        depth: 0,
        inString: false,
        escape: false,
        element: "",
        position: 0
      }),
      (state, chunks) => {
        const out: Array<Source.RawRecord> = []
        const finish = (): string | undefined => {
          if (lossless && loneSurrogate.test(state.element)) {
            out.push(Source.invalidUtf8(losslessBytes(state.element), state.position))
            state.element = ""
            return undefined
          }
          const element = trimEnd(state.element)
          state.element = ""
          if (Result.isFailure(decodeJson(element))) {
            return `element ${state.position} of the JSON array is not valid JSON`
          }
          out.push({ payload: element, position: state.position })
          return undefined
        }
        for (const chunk of chunks) {
          if (chunk === End) {
            if (state.phase !== "Done") return Effect.fail(invalid("the JSON array is not terminated"))
            continue
          }
          let start = state.phase === "InElement" ? 0 : -1
          for (let i = 0; i < chunk.length; i++) {
            const c = chunk.charCodeAt(i)
            switch (state.phase) {
              case "Start": {
                if (isSpace(c)) break
                if (c !== 0x5b) return Effect.fail(invalid("the JSON body is not an array"))
                state.phase = "FirstElement"
                break
              }
              case "FirstElement":
              case "NextElement": {
                if (isSpace(c)) break
                if (c === 0x5d && state.phase === "FirstElement") {
                  state.phase = "Done"
                  break
                }
                if (c === 0x2c || c === 0x5d) return Effect.fail(invalid("the JSON array has an empty element"))
                state.phase = "InElement"
                state.position++
                start = i
                i--
                break
              }
              case "InElement": {
                if (state.inString) {
                  if (state.escape) state.escape = false
                  else if (c === 0x5c) state.escape = true
                  else if (c === 0x22) state.inString = false
                } else if (c === 0x22) state.inString = true
                else if (c === 0x7b || c === 0x5b) state.depth++
                else if ((c === 0x7d || c === 0x5d) && state.depth > 0) state.depth--
                else if (state.depth === 0 && (c === 0x2c || c === 0x5d)) {
                  state.element += chunk.slice(start, i)
                  start = -1
                  const failure = finish()
                  if (failure !== undefined) return Effect.fail(invalid(failure))
                  state.phase = c === 0x2c ? "NextElement" : "Done"
                }
                break
              }
              case "Done": {
                if (!isSpace(c)) return Effect.fail(invalid("unexpected data after the JSON array"))
                break
              }
            }
          }
          if (state.phase === "InElement" && start !== -1) state.element += chunk.slice(start)
        }
        return Effect.succeed([state, out] as const)
      }
    )
  )
}

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------

const defaultTimeout = Duration.seconds(10)

const bodyRecords = (
  location: string,
  response: HttpClientResponse.HttpClientResponse,
  format: BodyFormat,
  timeout: Duration.Input
): Stream.Stream<Source.RawRecord, SourceError.SourceError> => {
  const bytes = response.stream.pipe(
    Stream.mapError((error) => fromHttpClientError(location, error)),
    Stream.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Stream.fail(
          new SourceError.SourceError({
            source: location,
            reason: new SourceError.Timeout({
              message: `no data for ${
                Duration.format(Duration.fromInputUnsafe(timeout))
              } while reading ${response.request.url}`
            })
          })
        )
    })
  )
  return format === "JsonLines"
    ? JsonLinesSource.bytesToRecords(bytes)
    : jsonArrayBytesToRecords(location, bytes)
}

/**
 * A source that `GET`s `url(partition)` and reads the body as records.
 *
 * **Details**
 *
 * - 2xx: the body is read as JSON Lines or a JSON array depending on its content type
 *   (see {@link bodyFormat});
 * - 404: `NotFound` (the partition does not exist; permanent); 429 and 5xx: `HttpStatus`
 *   (retryable); other statuses: `HttpStatus` (permanent);
 * - no response headers within `timeout`, or no body data for `timeout`: `Timeout` (retryable);
 * - a URL that is not `http:`/`https:`: `MalformedConfig`; transport failures: see
 *   {@link fromHttpClientError}.
 *
 * **Gotchas**
 *
 * The source does not retry; wrap the client with retries only if you want them *inside* one
 * pipeline attempt.
 *
 * @example
 * ```ts
 * import { HttpSource } from "@sluice/core"
 *
 * const source = HttpSource.make({
 *   url: (date) => `https://orders.example.com/v1/orders/${date}`,
 *   location: "orders-api",
 *   timeout: "30 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Source.Source<HttpClient.HttpClient> => {
  const timeout = options.timeout ?? defaultTimeout
  const location = options.location ?? "http"
  const fail = (reason: SourceError.SourceErrorReason) => new SourceError.SourceError({ source: location, reason })
  return Source.make(location, (partition) =>
    Stream.unwrap(Effect.gen(function*() {
      const url = options.url(partition)
      if (!isHttpUrl(url)) {
        return yield* fail(new SourceError.MalformedConfig({ message: `not an http(s) URL: ${JSON.stringify(url)}` }))
      }
      const client = HttpClient.withScope(yield* HttpClient.HttpClient)
      const response = yield* client.get(url, {
        headers: { accept: "application/x-ndjson, application/json;q=0.9, text/plain;q=0.5" }
      }).pipe(
        Effect.mapError((error) => fromHttpClientError(location, error)),
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.fail(fail(
              new SourceError.Timeout({
                message: `no response from ${url} within ${Duration.format(Duration.fromInputUnsafe(timeout))}`
              })
            ))
        })
      )
      if (response.status < 200 || response.status >= 300) {
        return yield* fail(statusReason(response.status, `GET ${url} answered ${response.status}`))
      }
      const contentType = response.headers["content-type"]
      const format = bodyFormat(contentType)
      if (format === undefined) {
        return yield* fail(
          new SourceError.InvalidResponse({ message: `GET ${url}: unsupported content type ${contentType}` })
        )
      }
      return bodyRecords(location, response, format, timeout)
    })))
}

/**
 * A source for APIs of the form `GET <baseUrl><path>?<param>=YYYY-MM-DD`, e.g.
 * `GET http://127.0.0.1:8080/orders?date=2024-03-01`. An invalid `baseUrl` fails each extract with
 * `MalformedConfig`.
 *
 * @example
 * ```ts
 * import { HttpSource } from "@sluice/core"
 *
 * const source = HttpSource.byDate({ baseUrl: "http://127.0.0.1:8080", path: "/orders" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const byDate = (options: {
  readonly baseUrl: string
  /** Defaults to `/orders`. */
  readonly path?: string | undefined
  /** The query parameter holding the date; defaults to `date`. */
  readonly param?: string | undefined
  /** Extra query parameters, e.g. `{ format: "json" }`. */
  readonly query?: Readonly<Record<string, string>> | undefined
  readonly timeout?: Duration.Input | undefined
}): Source.Source<HttpClient.HttpClient> => {
  const base = options.baseUrl.endsWith("/") ? options.baseUrl.slice(0, -1) : options.baseUrl
  const path = options.path ?? "/orders"
  const endpoint = `${base}${path.startsWith("/") ? path : `/${path}`}`
  return make({
    location: endpoint,
    timeout: options.timeout,
    url: (partition) => {
      const params = new URLSearchParams({ ...options.query, [options.param ?? "date"]: partition })
      return `${endpoint}?${params.toString()}`
    }
  })
}
