/**
 * The `sluice schema` commands, over the `SchemaRegistry` of the application's layer:
 *
 * - `schema list`: every subject, with its mode and versions;
 * - `schema show <subject> [--version N] [--representation]`: a version as JSON Schema (or as
 *   the stored representation);
 * - `schema check <subject> <file> [--version N]`: would the schema in `file` (a JSON Schema document,
 *   or a stored representation) be accepted? Prints the violations; exit status 1 when incompatible.
 *   With `--version N`, checked against version N only, under the subject's mode (an unknown
 *   version is a usage error, as in `schema show`);
 * - `schema register <subject> <file> [--mode M]`: registers it (and sets the subject's mode).
 *
 * @since 0.1.0
 */
import { SchemaCompatibility, SchemaRegistry } from "@sluice/core"
import { Console, Effect, FileSystem, type Layer, Option, Ref, Result, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as CliError from "./CliError.ts"
import { ExitCode, ExitStatus, worstExitStatus } from "./Commands.ts"
import * as Table from "./Table.ts"

const raise = (code: number) =>
  Effect.flatMap(ExitCode, (ref) => Ref.update(ref, (current) => worstExitStatus(current, code)))

const timestamp = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 19)

const versions = (list: ReadonlyArray<number>) =>
  list.length === 0 ? "no earlier version" : `version${list.length === 1 ? "" : "s"} ${list.join(", ")}`

const decodeJson = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Unknown))

/** A schema file as a definition; a file that is not a readable schema is a bad argument. */
const readDefinition = Effect.fnUntraced(function*(file: string) {
  const fs = yield* FileSystem.FileSystem
  const invalid = (message: string) => new CliError.InvalidArgument({ message: `${file}: ${message}` })
  const text = yield* fs.readFileString(file).pipe(Effect.mapError((error) => invalid(error.message)))
  const document = yield* decodeJson(text).pipe(
    Effect.mapError((error) => invalid(`not JSON: ${Table.oneLine(error.message)}`))
  )
  return yield* Effect.fromResult(SchemaCompatibility.parse(document)).pipe(
    Effect.mapError((error) => invalid(error.message))
  )
})

/** A blank subject names nothing: refused before anything is read or stored. */
const validSubject = (subject: string) =>
  subject.trim() === ""
    ? Effect.fail(new CliError.InvalidArgument({ message: "the subject must not be blank" }))
    : Effect.succeed(subject)

/** The outcome of a check: identical, compatible, or incompatible with its violations (exit status 1). */
const report = (result: SchemaRegistry.CheckResult) =>
  Effect.gen(function*() {
    if (result.identical !== undefined) {
      yield* Console.log(`compatible: identical to ${result.subject} version ${result.identical}`)
    } else if (result.compatible) {
      yield* Console.log(
        `compatible: ${result.subject} under ${result.mode} (checked against ${versions(result.against)})`
      )
    } else {
      yield* Console.log(
        `incompatible: ${result.subject} under ${result.mode} (checked against ${
          versions(result.against)
        }), ${result.violations.length} violation(s):`
      )
      yield* Effect.forEach(result.violations, (v) => Console.log(`  - ${v.message}`), { discard: true })
      yield* raise(ExitStatus.failed)
    }
  })

const printViolations = (violations: ReadonlyArray<SchemaCompatibility.Violation>) =>
  Effect.forEach(violations, (v) => Console.error(`  - ${v.message}`), { discard: true })

/**
 * Builds the `schema` command group. `layer` provides the `SchemaRegistry` (e.g. `SqlSluice.layer`
 * on the database); it is built only once the arguments are valid.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Command } from "effect/cli"
 * import { SchemaRegistry } from "@sluice/core"
 * import { SchemaCommands } from "@sluice/cli"
 *
 * const root = Command.make("sluice").pipe(
 *   Command.withSubcommands([SchemaCommands.make(SchemaRegistry.SchemaRegistry.layerMemory)])
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <LE, LR>(layer: Layer.Layer<SchemaRegistry.SchemaRegistry, LE, LR>) => {
  const withRegistry = <A, E, R>(
    f: (registry: SchemaRegistry.SchemaRegistry["Service"]) => Effect.Effect<A, E, R>
  ) => Effect.provide(SchemaRegistry.SchemaRegistry.use(f), layer)

  const subjectArg = Argument.String("subject").pipe(Argument.withDescription("The subject, e.g. daily-revenue-orders"))
  const fileArg = Argument.String("file").pipe(
    Argument.withDescription("A JSON Schema document (draft 2020-12), or a representation from `schema show`")
  )

  const list = Command.make(
    "list",
    {},
    () =>
      withRegistry((registry) =>
        Effect.gen(function*() {
          const subjects = yield* registry.subjects
          if (subjects.length === 0) {
            yield* Console.log("no schemas registered")
            return
          }
          yield* Console.log(Table.format(
            ["subject", "versions", "latest", "mode", "updated"],
            subjects.map((s) => [s.subject, s.versions, s.latest ?? "", s.mode, timestamp(s.updatedAt)])
          ))
        })
      )
  ).pipe(Command.withDescription("List the subjects of the schema registry"))

  const show = Command.make(
    "show",
    {
      subject: subjectArg,
      version: Flag.Int("version").pipe(Flag.withDescription("The version (the latest when omitted)"), Flag.optional),
      representation: Flag.Boolean("representation").pipe(
        Flag.withDescription("Print the stored representation instead of JSON Schema"),
        Flag.withDefault(false)
      )
    },
    Effect.fnUntraced(function*({ subject, version, representation }) {
      yield* validSubject(subject)
      if (Option.isSome(version) && version.value < 1) {
        return yield* new CliError.InvalidArgument({ message: `--version must be at least 1, got ${version.value}` })
      }
      return yield* withRegistry((registry) =>
        Effect.gen(function*() {
          const all = yield* registry.versions(subject)
          if (all.length === 0) {
            const known = (yield* registry.subjects).some((s) => s.subject === subject)
            return yield* new CliError.InvalidArgument({
              message: known
                ? `subject "${subject}" has no version yet; register one with \`sluice schema register\``
                : `no schema registered under subject "${subject}"; \`sluice schema list\` shows the subjects`
            })
          }
          const found = yield* registry.get(subject, Option.getOrUndefined(version)).pipe(
            Effect.catchTag("SchemaNotFound", (error) =>
              Effect.fail(
                new CliError.InvalidArgument({
                  message: `${error.message} (its versions: ${all.map((v) => v.version).join(", ")})`
                })
              ))
          )
          const mode = yield* registry.mode(subject)
          yield* Console.log(`subject:     ${found.subject}`)
          yield* Console.log(`version:     ${found.version} of ${all.length}`)
          yield* Console.log(`mode:        ${mode}${found.mode === mode ? "" : ` (registered under ${found.mode})`}`)
          yield* Console.log(`fingerprint: ${found.fingerprint}`)
          yield* Console.log(`registered:  ${timestamp(found.createdAt)}`)
          const fields = SchemaCompatibility.fields(found.definition)
          yield* Console.log("")
          yield* Console.log(
            fields.length === 0
              ? `type: ${SchemaCompatibility.describe(found.definition)}`
              : Table.format(
                ["field", "", "type"],
                fields.map((f) => [f.name, f.optional ? "optional" : "required", f.type])
              )
          )
          yield* Console.log("")
          yield* Console.log(JSON.stringify(
            representation ? found.definition.json : SchemaCompatibility.toJsonSchema(found.definition),
            null,
            2
          ))
        })
      )
    })
  ).pipe(Command.withDescription("Show a version of a subject as JSON Schema"))

  const check = Command.make(
    "check",
    {
      subject: subjectArg,
      file: fileArg,
      version: Flag.Int("version").pipe(
        Flag.withDescription(
          "Check against this version only, under the subject's mode (the versions the mode selects when omitted)"
        ),
        Flag.optional
      )
    },
    Effect.fnUntraced(function*({ subject, file, version }) {
      yield* validSubject(subject)
      if (Option.isSome(version) && version.value < 1) {
        return yield* new CliError.InvalidArgument({ message: `--version must be at least 1, got ${version.value}` })
      }
      const definition = yield* readDefinition(file)
      return yield* withRegistry((registry) =>
        Effect.gen(function*() {
          const known = (yield* registry.subjects).some((s) => s.subject === subject)
          if (!known) {
            return yield* new CliError.InvalidArgument({
              message: `no schema registered under subject "${subject}"; \`sluice schema list\` shows the subjects ` +
                `(\`sluice schema register\` makes a first version)`
            })
          }
          if (Option.isSome(version)) {
            const all = yield* registry.versions(subject)
            const result = yield* SchemaRegistry.checkVersion(subject, definition, version.value).pipe(
              Effect.provideService(SchemaRegistry.SchemaRegistry, registry),
              Effect.catchTag("SchemaNotFound", (error) =>
                Effect.fail(
                  new CliError.InvalidArgument({
                    message: `${error.message} (${
                      all.length === 0
                        ? "it has no version yet; register one with `sluice schema register`"
                        : `its versions: ${all.map((v) => v.version).join(", ")}`
                    })`
                  })
                ))
            )
            return yield* report(result)
          }
          const result = yield* registry.check(subject, definition)
          if (result.against.length === 0 && (yield* registry.versions(subject)).length === 0) {
            yield* Console.log(
              `compatible: ${subject} has no version yet, so there is nothing to check against; ` +
                `\`sluice schema register\` would make this its version 1`
            )
            return
          }
          yield* report(result)
        })
      )
    })
  ).pipe(
    Command.withDescription(
      "Check a JSON Schema against a subject (or one version of it, --version) without registering it (exit 1: incompatible)"
    )
  )

  const register = Command.make(
    "register",
    {
      subject: subjectArg,
      file: fileArg,
      mode: Flag.Literals("mode", SchemaCompatibility.Mode.literals).pipe(
        Flag.withDescription("Set the subject's compatibility mode (BACKWARD by default)"),
        Flag.optional
      )
    },
    Effect.fnUntraced(function*({ subject, file, mode }) {
      yield* validSubject(subject)
      const definition = yield* readDefinition(file)
      return yield* withRegistry((registry) =>
        Effect.gen(function*() {
          const result = yield* Effect.result(
            registry.register(subject, definition, { mode: Option.getOrUndefined(mode) })
          )
          if (Result.isFailure(result)) {
            const error = result.failure
            if (error._tag !== "SchemaIncompatible") return yield* error
            yield* Console.error(
              `refused: ${subject} under ${error.mode}, ${error.violations.length} violation(s):`
            )
            yield* printViolations(error.violations)
            return yield* raise(ExitStatus.failed)
          }
          const registered = result.success
          yield* Console.log(
            registered.created
              ? `registered ${subject} version ${registered.version} (${registered.mode})`
              : `${subject}: identical to version ${registered.version}, nothing registered`
          )
        })
      )
    })
  ).pipe(Command.withDescription("Register a JSON Schema as the next version of a subject"))

  return Command.make("schema").pipe(
    Command.withDescription("Versioned record schemas: list, show, check, register"),
    Command.withSubcommands([list, show, check, register])
  )
}
