/**
 * The `sluice` command line as the CLI-level tests run it: `node apps/sluice/src/main.ts <args>` in
 * a working directory, with no database configured (`DATABASE_URL` and `SLUICE_DATA_DIR` unset)
 * but what the test's environment says, and no colours.
 */
import { assert } from "@effect/vitest"
import { Database, Testing } from "@sluice/sql"
import { Effect, type Layer, type Scope, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Path from "node:path"

/** The CLI's entry point. */
export const main = Path.resolve(import.meta.dirname, "../apps/sluice/src/main.ts")

/** What a finished command did. */
export interface Result {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** Variables added to the inherited environment; an `undefined` one is unset. */
export type Env = Readonly<Record<string, string | undefined>>

/** Starts `sluice <args>` in `cwd` (killed, if still running, when the scope closes). */
export const spawn = (cwd: string, args: ReadonlyArray<string>, env: Env = {}) =>
  Effect.flatMap(
    ChildProcessSpawner.ChildProcessSpawner,
    (spawner) =>
      spawner.spawn(ChildProcess.make("node", [main, ...args], {
        cwd,
        env: { DATABASE_URL: undefined, SLUICE_DATA_DIR: undefined, NO_COLOR: "1", ...env },
        extendEnv: true
      }))
  )

/** A command and what it did, for assertion messages. */
export const describeResult = (args: ReadonlyArray<string>, result: Result) =>
  `sluice ${args.join(" ")} → ${result.exitCode}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`

/** Runs `sluice <args>` in `cwd` to its end; when `code` is given, asserts it exits with it. */
export const run = (
  cwd: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Env | undefined; readonly code?: number | undefined } = {}
) =>
  Effect.gen(function*() {
    const handle = yield* spawn(cwd, args, options.env)
    const [stdout, stderr, exitCode] = yield* Effect.all([
      Stream.mkString(Stream.decodeText(handle.stdout)),
      Stream.mkString(Stream.decodeText(handle.stderr)),
      handle.exitCode
    ], { concurrency: 3 })
    const result: Result = { exitCode: Number(exitCode), stdout, stderr }
    if (options.code !== undefined) assert.strictEqual(result.exitCode, options.code, describeResult(args, result))
    return result
  }).pipe(Effect.scoped)

/** The error line of a failed command: exactly one line on stderr, `error: …`, no stack trace. */
export const assertOneLineError = (result: Result, pattern: RegExp) => {
  const lines = result.stderr.trimEnd().split("\n")
  assert.strictEqual(lines.length, 1, `one line on stderr: ${result.stderr}`)
  assert.match(lines[0]!, /^error: /)
  assert.match(lines[0]!, pattern)
  assert.notMatch(result.stderr + result.stdout, /^\s+at /m, "no stack trace")
}

/**
 * Starts a serving command (`sluice serve …`) and waits for its `Listening on http://…` line: the
 * process, and the address it listens on.
 */
export const serve = (cwd: string, args: ReadonlyArray<string>, env?: Env) =>
  Effect.gen(function*() {
    const handle = yield* spawn(cwd, args, env)
    const listening = yield* Stream.decodeText(handle.stdout).pipe(
      Stream.takeUntil((chunk) => /Listening on http:\/\/[\d.]+:\d+/.test(chunk)),
      Stream.mkString
    )
    const address = /Listening on (http:\/\/[\d.]+:\d+)/.exec(listening)?.[1]
    assert.isDefined(address, listening)
    return { handle, address: address! }
  })

/**
 * A backend the commands run on: their environment, and the database to read back what they
 * wrote, for a working directory.
 */
export interface Session {
  readonly backend: Testing.Backend["name"]
  readonly database: (cwd: string) => Effect.Effect<
    { readonly env: Record<string, string>; readonly layer: Layer.Layer<Database.Services, unknown> },
    unknown,
    Scope.Scope
  >
}

const url = Testing.postgresUrl()

/**
 * The embedded database under the working directory's `.sluice/`, and a fresh PostgreSQL
 * database through `DATABASE_URL` when a server is configured.
 */
export const sessions: ReadonlyArray<Session> = [
  {
    backend: "pglite",
    database: (cwd) =>
      Effect.succeed({ env: {}, layer: Database.layerPglite({ dataDir: Path.join(cwd, ".sluice", "pglite") }) })
  },
  ...(url === undefined ? [] : [
    {
      backend: "postgres",
      database: () =>
        Effect.map(Testing.freshDatabase(url), (fresh) => ({
          env: { DATABASE_URL: fresh },
          layer: Database.layerPostgres(fresh)
        }))
    } satisfies Session
  ])
]
