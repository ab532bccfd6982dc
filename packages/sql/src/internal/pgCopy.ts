/**
 * `COPY … FROM STDIN` on a connection of `@effect/sql-pg`, which speaks the PostgreSQL wire
 * protocol itself but has no COPY: its statement machines treat `CopyInResponse` as a protocol
 * desync.
 *
 * **How it reaches the connection**
 *
 * Inside `sql.withTransaction`, the transaction's connection is public: `sql.transactionService`
 * holds the `SqlConnection` the transaction pinned. That object is the driver's `Connection`,
 * whose `connection` field is the pinned `PgConnection`, whose `base` is the session itself. A
 * session routes every backend message to one `consumer` (`onMessage`, `onFatal`), serializes
 * its statements with the `wire` semaphore, and writes frames to `session.socket`: that is how
 * the driver's own query, stream and `LISTEN` machines work. A COPY is one more such machine:
 * it takes `wire`, installs itself as the consumer, writes `Query("COPY … FROM STDIN")`, the
 * `CopyData` frames and `CopyDone` in one go, and waits for `CommandComplete` and
 * `ReadyForQuery`. Nothing of the driver is modified or forked.
 *
 * Those members are not part of the driver's declared interface, so {@link targetOf} checks
 * their shape at run time and returns `undefined` when they are missing (another driver, or a
 * version that changed them): callers then load with `unnest`. `@effect/sql-pg` is pinned to
 * an exact version, and a test asserts that COPY is available on it, so an upgrade that breaks
 * the shape fails loudly instead of silently falling back.
 *
 * **Errors and interruption**
 *
 * An `ErrorResponse` (a bad value, a constraint violation) fails the COPY with a `SqlError`
 * classified by SQLSTATE like the driver's own; the server has then aborted the transaction,
 * which the caller rolls back. CopyData sent after the error is discarded by the server. An
 * interrupted COPY waits a moment for the server, then sends a `CancelRequest` (as the driver
 * does for an interrupted query) and drains to `ReadyForQuery`, so the connection is left
 * idle for the rollback; when the server does not answer within 5 seconds, the connection is
 * closed, which rolls the transaction back on the server.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Exit, type Semaphore, Stream } from "effect"
import type { SqlConnection } from "effect/sql"
import {
  AuthenticationError,
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  DeadlockError,
  LockTimeoutError,
  SerializationError,
  SqlError,
  type SqlErrorReason,
  SqlSyntaxError,
  StatementTimeoutError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"
import type { Duplex } from "node:stream"

/** A backend message as the driver's parser hands it to a consumer (only what COPY reads). */
interface BackendMessage {
  readonly _tag: string
  readonly commandTag?: string
  readonly fields?:
    & { readonly code?: string | undefined; readonly message?: string | undefined }
    & Record<
      string,
      unknown
    >
}

interface Consumer {
  readonly onMessage: (message: BackendMessage) => void
  readonly onFatal: (error: SqlError) => void
}

/** The members of the driver's session (`PgConnectionImpl` of `@effect/sql-pg` 4.0) a COPY uses. */
interface Session {
  consumer: Consumer | undefined
  readonly deadWith: SqlError | undefined
  readonly wire: Semaphore.Semaphore
  readonly session: { readonly socket: Duplex; readonly parser: { readField: unknown } }
  readonly cancel: Effect.Effect<void>
  readonly fatal: (error: SqlError) => void
}

/**
 * A pinned session that can run a COPY.
 *
 * @internal
 */
export interface Target {
  readonly pinned: { readonly released: boolean }
  readonly session: Session
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/**
 * The session behind a transaction's connection, when it is a pinned `@effect/sql-pg` session
 * of the expected shape; `undefined` otherwise.
 *
 * @internal
 */
export const targetOf = (connection: SqlConnection.Connection): Target | undefined => {
  const pinned: unknown = (connection as unknown as { readonly connection?: unknown }).connection
  if (!isObject(pinned) || typeof pinned.released !== "boolean") return undefined
  const session: unknown = pinned.base
  if (!isObject(session) || !("consumer" in session) || typeof session.fatal !== "function") return undefined
  if (!Effect.isEffect(session.cancel)) return undefined
  const wire = session.wire as Partial<Semaphore.Semaphore> | undefined
  if (!isObject(wire) || typeof wire.withPermit !== "function") return undefined
  const inner = session.session
  if (!isObject(inner) || !isObject(inner.parser) || !isObject(inner.socket)) return undefined
  if (typeof (inner.socket as Partial<Duplex>).write !== "function") return undefined
  return { pinned: pinned as unknown as Target["pinned"], session: session as unknown as Session }
}

const frame = (type: number, body: Uint8Array): Uint8Array => {
  const bytes = Buffer.allocUnsafe(5 + body.length)
  bytes[0] = type
  bytes.writeInt32BE(4 + body.length, 1)
  bytes.set(body, 5)
  return bytes
}

/**
 * A simple-protocol `Query` message.
 *
 * @internal
 */
export const queryMessage = (sql: string): Uint8Array => frame(0x51, Buffer.from(`${sql}\u0000`, "utf8"))

const copyDone: Uint8Array = frame(0x63, new Uint8Array(0))

/** SQLSTATE classes as `@effect/sql-pg` classifies them (its `internal/sqlError.ts`). */
const classify = (fields: NonNullable<BackendMessage["fields"]>, operation: string): SqlErrorReason => {
  const cause = Object.assign(new Error(fields.message ?? "Unknown PostgreSQL error"), fields)
  const props = { cause, message: "PgCopy: COPY failed", operation }
  const code = fields.code
  if (code !== undefined) {
    if (code.startsWith("08")) return new ConnectionError(props)
    if (code.startsWith("28")) return new AuthenticationError(props)
    if (code === "42501") return new AuthorizationError(props)
    if (code.startsWith("42")) return new SqlSyntaxError(props)
    if (code === "23505") {
      const constraint = typeof fields["constraint"] === "string" && fields["constraint"].trim() !== ""
        ? fields["constraint"].trim()
        : "unknown"
      return new UniqueViolation({ ...props, constraint })
    }
    if (code.startsWith("23")) return new ConstraintError(props)
    if (code === "40P01") return new DeadlockError(props)
    if (code === "40001") return new SerializationError(props)
    if (code === "55P03") return new LockTimeoutError(props)
    if (code === "57014") return new StatementTimeoutError(props)
  }
  return new UnknownError(props)
}

const connectionError = (message: string): SqlError =>
  new SqlError({
    reason: new ConnectionError({ cause: new Error(message), message: `PgCopy: ${message}`, operation: "copy" })
  })

const abortGraceMillis = 10
const abortTimeoutMillis = 5000

/** Waits `millis` on a timer (not the `Clock`: a `TestClock` must not stall a drain). */
const sleep = (millis: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * Runs `statement` (a `COPY … FROM STDIN`) on the target, sending `frames` (complete `CopyData`
 * messages) as its data; succeeds with the number of rows copied.
 *
 * @internal
 */
export const copyFrom = (
  target: Target,
  statement: string,
  frames: ReadonlyArray<Uint8Array>
): Effect.Effect<number, SqlError> => {
  const session = target.session
  return session.wire.withPermit(Effect.suspend(() => {
    if (target.pinned.released) return Effect.fail(connectionError("the pinned connection was released"))
    if (session.deadWith !== undefined) return Effect.fail(session.deadWith)
    if (session.consumer !== undefined) return Effect.fail(connectionError("the connection is busy"))
    return run(session, statement, frames)
  }))
}

/**
 * The COPY's side of the session: it becomes the session's consumer and follows the backend's
 * answers (`CopyInResponse`, then `CommandComplete` or `ErrorResponse`, then `ReadyForQuery`),
 * calling `finish` once, with the rows copied or the failure. A message out of order is a
 * protocol desync, fatal to the session.
 */
const install = (session: Session, finish: (exit: Exit.Exit<number, SqlError>) => void): Consumer => {
  type Phase = "start" | "copy" | "complete" | "error"
  let phase: Phase = "start"
  let rows = 0
  let failure: SqlError | undefined
  let done = false
  const end = (exit: Exit.Exit<number, SqlError>): void => {
    if (done) return
    done = true
    if (session.consumer === consumer) session.consumer = undefined
    finish(exit)
  }
  const desync = (message: string): void => session.fatal(connectionError(message))
  const consumer: Consumer = {
    onMessage: (message) => {
      switch (message._tag) {
        case "CopyInResponse":
          if (phase !== "start") return desync(`Unexpected CopyInResponse during ${phase}`)
          phase = "copy"
          return
        case "CommandComplete": {
          if (phase !== "copy") return desync(`Unexpected CommandComplete during ${phase}`)
          const tag = message.commandTag ?? ""
          rows = tag.startsWith("COPY ") ? Number(tag.slice(5)) : 0
          phase = "complete"
          return
        }
        case "ErrorResponse":
          if (phase === "error") return
          failure = new SqlError({ reason: classify(message.fields ?? {}, "copy") })
          phase = "error"
          return
        case "ReadyForQuery":
          if (phase === "complete") return end(Exit.succeed(rows))
          if (phase === "error") return end(Exit.fail(failure!))
          return desync(`Unexpected ReadyForQuery during ${phase}`)
        default:
          return desync(`Unexpected ${message._tag} during COPY`)
      }
    },
    onFatal: (error) => end(Exit.fail(error))
  }
  session.consumer = consumer
  session.session.parser.readField = undefined
  return consumer
}

const writeFailed = (session: Session, cause: unknown): void =>
  session.fatal(
    new SqlError({
      reason: new ConnectionError({ cause, message: "PgCopy: Failed to write COPY data", operation: "copy" })
    })
  )

/**
 * After an interruption while the server still works on a COPY whose data is all sent: waits a
 * moment for it to finish, then cancels it, and drains to `ReadyForQuery` (or closes the
 * connection when the server does not answer).
 */
const abandon = (session: Session, settled: Deferred.Deferred<number, SqlError>): Effect.Effect<void> => {
  const timer = setTimeout(() => session.fatal(connectionError("COPY cancellation timed out")), abortTimeoutMillis)
  const wait = Effect.ensuring(Effect.ignore(Deferred.await(settled)), Effect.sync(() => clearTimeout(timer)))
  return Effect.andThen(
    Effect.raceFirst(Effect.ignore(Deferred.await(settled)), sleep(abortGraceMillis)),
    Effect.suspend(() => Deferred.isDoneUnsafe(settled) ? wait : Effect.andThen(session.cancel, wait))
  )
}

/** Waits for the server's answer to a `CopyFail`, closing the connection when it does not come. */
const settle = (session: Session, settled: Deferred.Deferred<number, SqlError>): Effect.Effect<void> => {
  const timer = setTimeout(() => session.fatal(connectionError("COPY abort timed out")), abortTimeoutMillis)
  return Effect.ensuring(Effect.ignore(Deferred.await(settled)), Effect.sync(() => clearTimeout(timer)))
}

const run = (session: Session, statement: string, frames: ReadonlyArray<Uint8Array>) =>
  Effect.uninterruptibleMask((restore) => {
    const settled = Deferred.makeUnsafe<number, SqlError>()
    install(session, (exit) => Deferred.doneUnsafe(settled, exit))
    const socket = session.session.socket
    try {
      // One Query, the data and CopyDone, without waiting for CopyInResponse: if the statement
      // fails before COPY starts, the server ignores the CopyData and CopyDone that follow.
      socket.cork()
      socket.write(queryMessage(statement))
      for (const data of frames) socket.write(data)
      socket.write(copyDone)
      socket.uncork()
    } catch (cause) {
      writeFailed(session, cause)
    }
    return restore(Deferred.await(settled)).pipe(
      Effect.onInterrupt(() => abandon(session, settled))
    )
  })

/** A `CopyFail` message: the server aborts the COPY with `reason` and answers `ReadyForQuery`. */
const copyFail = (reason: string): Uint8Array => frame(0x66, Buffer.from(`${reason}\u0000`, "utf8"))

/** Bytes the socket may hold unsent before a streamed COPY waits for it to drain. */
const streamBuffer = 8 * 1024 * 1024

/**
 * Waits until the socket has sent what it holds, or the COPY has ended (a server error: the socket
 * may then hold data it will never need to send).
 */
const drain = (socket: Duplex, settled: Deferred.Deferred<number, SqlError>): Effect.Effect<void> =>
  Effect.raceFirst(
    Effect.callback<void>((resume) => {
      const cleanup = () => {
        socket.off("drain", done)
        socket.off("close", done)
      }
      const done = () => {
        cleanup()
        resume(Effect.void)
      }
      socket.once("drain", done)
      socket.once("close", done)
      return Effect.sync(cleanup)
    }),
    Effect.ignore(Deferred.await(settled))
  )

/**
 * Runs `statement` (a `COPY … FROM STDIN`) on the target with the frames of `chunks` as its
 * data, sent as they come: the server loads the first rows while later ones are still being
 * produced, and one COPY carries the whole stream. Succeeds with the number of rows copied.
 *
 * **Details**
 *
 * Frames go to the socket as soon as a chunk arrives; when more than 8 MiB wait unsent, the
 * stream is paused until the socket drains. When the server rejects a row, the stream stops
 * being pulled and the COPY fails with the server's error. When the stream fails or the fiber
 * is interrupted while data is still being sent, the COPY is aborted with `CopyFail` (nothing
 * of it is loaded) and the connection is left idle for the rollback; the stream's failure is
 * the result.
 *
 * @internal
 */
export const copyStream = <E, R>(
  target: Target,
  statement: string,
  chunks: Stream.Stream<ReadonlyArray<Uint8Array>, E, R>
): Effect.Effect<number, SqlError | E, R> => {
  const session = target.session
  return session.wire.withPermit(Effect.suspend(() => {
    if (target.pinned.released) return Effect.fail(connectionError("the pinned connection was released"))
    if (session.deadWith !== undefined) return Effect.fail(session.deadWith)
    if (session.consumer !== undefined) return Effect.fail(connectionError("the connection is busy"))
    return Effect.uninterruptibleMask((restore) => {
      const settled = Deferred.makeUnsafe<number, SqlError>()
      install(session, (exit) => Deferred.doneUnsafe(settled, exit))
      const socket = session.session.socket
      const send = (frames: ReadonlyArray<Uint8Array>): Effect.Effect<void, typeof stopped> => {
        // the server has answered already (an error): it discards whatever follows
        if (Deferred.isDoneUnsafe(settled)) return Effect.fail(stopped)
        try {
          for (const data of frames) socket.write(data)
        } catch (cause) {
          writeFailed(session, cause)
          return Effect.fail(stopped)
        }
        return socket.writableLength > streamBuffer ? drain(socket, settled) : Effect.void
      }
      try {
        socket.write(queryMessage(statement))
      } catch (cause) {
        writeFailed(session, cause)
      }
      return Effect.gen(function*() {
        const streamed = yield* Effect.exit(restore(Stream.runForEach(chunks, send)))
        if (Exit.isSuccess(streamed) || isStopped(streamed.cause)) {
          if (!Deferred.isDoneUnsafe(settled)) socket.write(copyDone)
          return yield* restore(Deferred.await(settled)).pipe(
            Effect.onInterrupt(() => abandon(session, settled))
          )
        }
        // the stream failed or was interrupted: the COPY is aborted, then the stream's failure stands
        if (!Deferred.isDoneUnsafe(settled)) {
          socket.write(copyFail(Cause.hasInterruptsOnly(streamed.cause) ? "interrupted" : "the data stream failed"))
          yield* settle(session, settled)
        }
        return yield* Effect.failCause(streamed.cause as Cause.Cause<E>)
      })
    })
  }))
}

/** The data stream stopped because the COPY had already ended (a server error). */
const stopped = Symbol.for("@sluice/sql/PgCopy/stopped")

const isStopped = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => Cause.isFailReason(reason) && reason.error === stopped)
