/**
 * Running a command tree as the process's main: one-line errors, never a stack trace,
 * and an exit status that says what happened (see `Commands.ExitStatus`).
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Layer, Ref } from "effect"
import { type CliError, CliOutput, Command } from "effect/cli"
import { ExitCode, ExitStatus, worstExitStatus } from "./Commands.ts"

const usageTags = new Set(["InvalidArgument", "UnknownPipeline", "ShowHelp", "MalformedConfig", "InvalidDatabaseUrl"])

/**
 * An error's message, or its cause's when it has none of its own (e.g. effect's `ServeError`, whose
 * cause is Node's `listen EADDRINUSE: address already in use 127.0.0.1:9464`), prefixed by its tag.
 */
const messageOf = (error: unknown, depth = 0): string | undefined => {
  const e = error as { readonly _tag?: unknown; readonly message?: unknown; readonly cause?: unknown } | undefined
  if (typeof e?.message === "string" && e.message.length > 0) return e.message
  if (depth > 3 || e?.cause === undefined) return undefined
  const cause = messageOf(e.cause, depth + 1)
  return cause === undefined ? undefined : typeof e._tag === "string" ? `${e._tag}: ${cause}` : cause
}

const describe = (error: unknown): { readonly line: string; readonly code: number } => {
  const e = error as { readonly _tag?: string; readonly message?: string; readonly reason?: { readonly _tag?: string } }
  const tag = e?._tag ?? "Error"
  if (tag === "ShowHelp") return { line: "", code: ExitStatus.usage }
  const message = messageOf(error) ?? String(error)
  const reason = e?.reason?._tag
  const code = usageTags.has(tag) || (reason !== undefined && usageTags.has(reason))
    ? ExitStatus.usage
    : ExitStatus.failed
  return { line: `error: ${message.split("\n")[0]}`, code }
}

/**
 * The first error of an invalid invocation as one line. A flag followed by a negative value
 * (`--older-than -5d`) is, to the parser, a flag with no value followed by an unknown flag:
 * that is reported as the bad value it is, naming it.
 */
const invocationError = (error: CliError.NonShowHelpErrors | undefined, argv: ReadonlyArray<string>): string => {
  if (error?._tag === "InvalidValue" && error.kind === "flag" && error.value.length === 0) {
    const next = argv[argv.indexOf(`--${error.option}`) + 1]
    if (argv.includes(`--${error.option}`) && next !== undefined && /^-\d/.test(next)) {
      return `invalid --${error.option} ${JSON.stringify(next)}: a value cannot start with "-"`
    }
  }
  return (error?.message ?? "invalid arguments").split("\n")[0]!
}

/**
 * Help and `--version` as effect presents them; an invalid invocation (a missing or malformed flag, an
 * unknown option) as one line naming the problem and where the usage is, not the whole help page.
 */
const presenter = (argv: ReadonlyArray<string>) =>
  CliOutput.layerPresenter({
    present: (event) =>
      event._tag === "InvalidInvocation"
        ? Console.error(
          `error: ${invocationError(event.errors[0], argv)} (usage: ${event.commandPath.join(" ")} --help)`
        )
        : CliOutput.defaultPresenter.present(event)
  })

/**
 * Runs `command` with `argv`, providing `layer` (built lazily, so a database that cannot be
 * reached is reported like any other error), and exits with the worst status recorded.
 *
 * @example
 * ```ts
 * import { Command } from "effect/cli"
 * import { Layer } from "effect"
 * import { Main } from "@sluice/cli"
 *
 * declare const root: Command.Command<"sluice", {}, {}, never, never>
 * Main.run(root, Layer.empty, { name: "sluice", version: "0.1.0" })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Name extends string, I, E, R, ROut, ER, RL>(
  command: Command.Command<Name, I, any, E, R>,
  layer: Layer.Layer<ROut, ER, RL>,
  options: { readonly version: string; readonly argv?: ReadonlyArray<string> | undefined }
): void => {
  const argv = options.argv ?? process.argv.slice(2)
  const program = Effect.gen(function*() {
    const exitCode = yield* Ref.make<number>(ExitStatus.ok)
    yield* Command.runWith(command, { version: options.version })(argv).pipe(
      Effect.provide(layer),
      Effect.provide(presenter(argv)),
      Effect.provideService(ExitCode, exitCode),
      Effect.catchCause((cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
        const failure = cause.reasons.find((r) => r._tag === "Fail")
        const { line, code } = failure !== undefined && failure._tag === "Fail"
          ? describe(failure.error)
          : { line: `internal error: ${String(Cause.squash(cause)).split("\n")[0]}`, code: 70 }
        return Effect.andThen(
          line.length > 0 ? Effect.sync(() => process.stderr.write(line + "\n")) : Effect.void,
          Ref.update(exitCode, (c) => worstExitStatus(c, code))
        )
      })
    )
    return yield* Ref.get(exitCode)
  })
  // `sluice dlq list … | head`: once the reader closes the pipe, stop quietly with the status a
  // Unix tool killed by SIGPIPE has (128 + 13), not Node's unhandled-error stack trace
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error
      process.exit(141)
    })
  }
  NodeRuntime.runMain(
    (program as Effect.Effect<number, never, never>).pipe(Effect.provide(NodeServices.layer)) as Effect.Effect<number>,
    {
      disableErrorReporting: true,
      teardown: (exit, onExit) =>
        onExit(Exit.isSuccess(exit) ? Number(exit.value) : Exit.hasInterrupts(exit) ? 130 : 70)
    }
  )
}
