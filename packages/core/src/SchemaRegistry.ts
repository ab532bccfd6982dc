/**
 * The schema registry: the versions of record schemas, by subject, each checked against the earlier
 * ones by the subject's compatibility mode before it is accepted (see {@link SchemaCompatibility}).
 *
 * A pipeline registers its record schema at start-up (`registry.register("orders", Order)`):
 * registering a schema identical to a version already there returns that version (idempotent), a
 * compatible one becomes the next version, an incompatible one is refused with a
 * `SchemaIncompatible` error naming each field and rule.
 *
 * The {@link SchemaRegistry} contract is implemented in memory here (for tests) and in SQL by
 * `@sluice/sql` (`SqlSchemaRegistry`, table `sluice.schemas`).
 *
 * **Decoding older records**
 *
 * A backward-compatible version can decode every record written under the earlier ones. A field
 * added later is declared with its default ({@link SchemaCompatibility.withDefault},
 * {@link SchemaCompatibility.nullable}), so an old record decodes under the newest schema with it:
 *
 * ```ts
 * import { Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const OrderV1 = Schema.Struct({ order_id: Schema.String, amount: Schema.Number })
 * const OrderV2 = Schema.Struct({
 *   ...OrderV1.fields,
 *   currency: SchemaCompatibility.withDefault(Schema.String, "USD"),
 *   loyalty_points: SchemaCompatibility.nullable(Schema.Int)
 * })
 * Schema.decodeUnknownSync(OrderV2)({ order_id: "a", amount: 3 })
 * // { order_id: "a", amount: 3, currency: "USD", loyalty_points: null }
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Ref, Schema, Semaphore } from "effect"
import * as SchemaCompatibility from "./SchemaCompatibility.ts"
import type { SinkError } from "./SinkError.ts"

/**
 * One version of a subject.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchemaVersion {
  readonly subject: string
  /** 1, 2, 3… in registration order, per subject. */
  readonly version: number
  readonly definition: SchemaCompatibility.Definition
  /** {@link SchemaCompatibility.fingerprint} of the definition. */
  readonly fingerprint: string
  /** The mode the version was checked under when it was registered. */
  readonly mode: SchemaCompatibility.Mode
  /** Epoch milliseconds. */
  readonly createdAt: number
}

/**
 * What `register` did: `created` is false when an identical version was already there.
 *
 * @since 0.1.0
 * @category models
 */
export interface Registration extends SchemaVersion {
  readonly created: boolean
}

/**
 * A subject with its current mode and its versions.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subject {
  readonly subject: string
  readonly mode: SchemaCompatibility.Mode
  readonly versions: number
  /** The latest version; `undefined` for a subject that has a mode but no version yet. */
  readonly latest: number | undefined
  /** Epoch milliseconds of the latest registration or mode change. */
  readonly updatedAt: number
}

/**
 * The outcome of checking a candidate against a subject, without registering it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckResult {
  readonly subject: string
  readonly mode: SchemaCompatibility.Mode
  readonly compatible: boolean
  readonly violations: ReadonlyArray<SchemaCompatibility.Violation>
  /** The versions the mode checked the candidate against (none for a new subject or `NONE`). */
  readonly against: ReadonlyArray<number>
  /** The version identical to the candidate, if one is registered: registering would return it. */
  readonly identical: number | undefined
}

/**
 * A schema to register or check: an effect schema, or a definition (e.g. from a JSON Schema file).
 *
 * @since 0.1.0
 * @category models
 */
export type Input = Schema.Top | SchemaCompatibility.Definition

/**
 * No such subject, or no such version of it.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaNotFound extends Schema.TaggedError<SchemaNotFound>("@sluice/core/SchemaRegistry/SchemaNotFound")(
  "SchemaNotFound",
  { subject: Schema.String, version: Schema.optionalKey(Schema.Int) }
) {
  override get message(): string {
    return this.version === undefined
      ? `no schema registered under subject "${this.subject}"`
      : `subject "${this.subject}" has no version ${this.version}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type RegisterError = SchemaCompatibility.SchemaIncompatible | SchemaCompatibility.InvalidSchema | SinkError

/**
 * Storage of schema versions by subject, with compatibility checks.
 *
 * - A blank subject is refused (`InvalidSchema`) by `register` and `check`.
 * - `register` returns the new version, or the existing one when an identical schema (same
 *   fingerprint) is registered already; `options.mode` sets the subject's mode first (kept only
 *   when the registration succeeds). Two registrations at once never get the same version.
 * - `check` answers what `register` would do, and changes nothing.
 * - `get` returns a version, the latest when `version` is omitted.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SchemaRegistry } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const registry = yield* SchemaRegistry.SchemaRegistry
 *   const v1 = yield* registry.register("orders", Schema.Struct({ id: Schema.String }))
 *   const v2 = yield* registry.register("orders", Schema.Struct({ id: Schema.String, note: Schema.optionalKey(Schema.String) }))
 *   return [v1.version, v2.version] // [1, 2]
 * }).pipe(Effect.provide(SchemaRegistry.SchemaRegistry.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class SchemaRegistry extends Context.Service<SchemaRegistry, {
  readonly register: (
    subject: string,
    schema: Input,
    options?: { readonly mode?: SchemaCompatibility.Mode | undefined }
  ) => Effect.Effect<Registration, RegisterError>
  readonly check: (
    subject: string,
    schema: Input
  ) => Effect.Effect<CheckResult, SchemaCompatibility.InvalidSchema | SinkError>
  readonly get: (
    subject: string,
    version?: number | undefined
  ) => Effect.Effect<SchemaVersion, SchemaNotFound | SinkError>
  /** Every version of a subject, oldest first (empty for an unknown subject). */
  readonly versions: (subject: string) => Effect.Effect<ReadonlyArray<SchemaVersion>, SinkError>
  /** Every subject, by name. */
  readonly subjects: Effect.Effect<ReadonlyArray<Subject>, SinkError>
  /** The subject's mode ({@link SchemaCompatibility.defaultMode} until set). */
  readonly mode: (subject: string) => Effect.Effect<SchemaCompatibility.Mode, SinkError>
  readonly setMode: (subject: string, mode: SchemaCompatibility.Mode) => Effect.Effect<void, SinkError>
}>()("@sluice/core/SchemaRegistry") {
  /**
   * An in-memory registry, for tests that need no database.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory: Layer.Layer<SchemaRegistry> = Layer.effect(
    SchemaRegistry,
    Effect.gen(function*() {
      interface State {
        readonly mode: SchemaCompatibility.Mode | undefined
        readonly updatedAt: number
        readonly versions: ReadonlyArray<SchemaVersion>
      }
      const ref = yield* Ref.make(new Map<string, State>())
      const lock = Semaphore.makeUnsafe(1)
      const stateOf = (subject: string) => Effect.map(Ref.get(ref), (all) => all.get(subject))
      const put = (subject: string, state: State) => Ref.update(ref, (all) => new Map(all).set(subject, state))

      const register = Effect.fn("SchemaRegistry.register")(function*(
        subject: string,
        schema: Input,
        options?: { readonly mode?: SchemaCompatibility.Mode | undefined }
      ) {
        yield* requireSubject(subject)
        const prepared = yield* prepare(schema)
        return yield* lock.withPermit(Effect.gen(function*() {
          const state = yield* stateOf(subject)
          const mode = options?.mode ?? state?.mode ?? SchemaCompatibility.defaultMode
          const versions = state?.versions ?? []
          const decision = yield* decide({ subject, mode, ...prepared, versions })
          const now = yield* Clock.currentTimeMillis
          if (decision._tag === "Existing") {
            if (options?.mode !== undefined) yield* put(subject, { mode, updatedAt: now, versions })
            return { ...decision.version, created: false }
          }
          const created: SchemaVersion = { subject, version: decision.version, mode, createdAt: now, ...prepared }
          yield* put(subject, { mode: options?.mode ?? state?.mode, updatedAt: now, versions: [...versions, created] })
          return { ...created, created: true }
        }))
      })

      const check = Effect.fn("SchemaRegistry.check")(function*(subject: string, schema: Input) {
        yield* requireSubject(subject)
        const prepared = yield* prepare(schema)
        const state = yield* stateOf(subject)
        const mode = state?.mode ?? SchemaCompatibility.defaultMode
        return evaluate({ subject, mode, ...prepared, versions: state?.versions ?? [] })
      })

      const get = Effect.fn("SchemaRegistry.get")(function*(subject: string, version?: number | undefined) {
        const versions = (yield* stateOf(subject))?.versions ?? []
        const found = version === undefined ? versions.at(-1) : versions.find((v) => v.version === version)
        if (found === undefined) {
          return yield* new SchemaNotFound(version === undefined ? { subject } : { subject, version })
        }
        return found
      })

      return SchemaRegistry.of({
        register,
        check,
        get,
        versions: (subject) => Effect.map(stateOf(subject), (state) => state?.versions ?? []),
        subjects: Effect.map(
          Ref.get(ref),
          (all) =>
            [...all].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([subject, state]) => ({
              subject,
              mode: state.mode ?? SchemaCompatibility.defaultMode,
              versions: state.versions.length,
              latest: state.versions.at(-1)?.version,
              updatedAt: state.updatedAt
            }))
        ),
        mode: (subject) => Effect.map(stateOf(subject), (state) => state?.mode ?? SchemaCompatibility.defaultMode),
        setMode: (subject, mode) =>
          lock.withPermit(Effect.gen(function*() {
            const state = yield* stateOf(subject)
            const now = yield* Clock.currentTimeMillis
            yield* put(subject, { mode, updatedAt: now, versions: state?.versions ?? [] })
          }))
      })
    })
  )
}

/**
 * A candidate ready to be checked and stored: its definition and fingerprint.
 *
 * @since 0.1.0
 * @category implementation
 */
export interface Prepared {
  readonly definition: SchemaCompatibility.Definition
  readonly fingerprint: string
}

/**
 * Refuses a blank subject (empty, or only white space): it would name nothing. For
 * implementations of the contract, before `register` and `check`.
 *
 * @since 0.1.0
 * @category implementation
 */
export const requireSubject = (subject: string): Effect.Effect<string, SchemaCompatibility.InvalidSchema> =>
  subject.trim() === ""
    ? Effect.fail(new SchemaCompatibility.InvalidSchema({ message: "the subject must not be blank" }))
    : Effect.succeed(subject)

/**
 * Turns an input into a {@link Prepared} candidate. For implementations of the contract.
 *
 * @since 0.1.0
 * @category implementation
 */
export const prepare = (schema: Input): Effect.Effect<Prepared, SchemaCompatibility.InvalidSchema> =>
  Effect.flatMap(
    Effect.fromResult(SchemaCompatibility.toDefinition(schema)),
    (definition) =>
      Effect.map(SchemaCompatibility.fingerprint(definition), (fingerprint) => ({ definition, fingerprint }))
  )

/**
 * What registering a candidate under a subject's mode would do, given its versions (oldest first).
 * Shared by every implementation, so that they agree. For implementations of the contract.
 *
 * @since 0.1.0
 * @category implementation
 */
export const evaluate = (options: {
  readonly subject: string
  readonly mode: SchemaCompatibility.Mode
  readonly definition: SchemaCompatibility.Definition
  readonly fingerprint: string
  readonly versions: ReadonlyArray<SchemaVersion>
}): CheckResult => {
  const identical = options.versions.find((v) => v.fingerprint === options.fingerprint)?.version
  const { directions, transitive } = SchemaCompatibility.checksOf(options.mode)
  const sorted = [...options.versions].sort((a, b) => a.version - b.version)
  const against = directions.length === 0 ? [] : (transitive ? sorted : sorted.slice(-1)).map((v) => v.version)
  const violations = identical === undefined
    ? SchemaCompatibility.violations(options.definition, sorted, options.mode)
    : []
  return {
    subject: options.subject,
    mode: options.mode,
    compatible: violations.length === 0,
    violations,
    against,
    identical
  }
}

/**
 * The decision of `register`: return an identical version, or create the next one, or refuse.
 * For implementations of the contract.
 *
 * @since 0.1.0
 * @category implementation
 */
export const decide = (options: {
  readonly subject: string
  readonly mode: SchemaCompatibility.Mode
  readonly definition: SchemaCompatibility.Definition
  readonly fingerprint: string
  readonly versions: ReadonlyArray<SchemaVersion>
}): Effect.Effect<
  { readonly _tag: "Existing"; readonly version: SchemaVersion } | { readonly _tag: "New"; readonly version: number },
  SchemaCompatibility.SchemaIncompatible
> => {
  const existing = options.versions.find((v) => v.fingerprint === options.fingerprint)
  if (existing !== undefined) return Effect.succeed({ _tag: "Existing", version: existing })
  const result = evaluate(options)
  if (!result.compatible) {
    return Effect.fail(
      new SchemaCompatibility.SchemaIncompatible({
        subject: options.subject,
        mode: options.mode,
        violations: result.violations
      })
    )
  }
  const latest = options.versions.reduce((max, v) => Math.max(max, v.version), 0)
  return Effect.succeed({ _tag: "New", version: latest + 1 })
}

/**
 * Registers `schema` under `subject` in the registry of the context.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SchemaRegistry } from "@sluice/core"
 *
 * const Order = Schema.Struct({ order_id: Schema.String })
 * const setup = SchemaRegistry.register("orders", Order) // Effect<Registration, …, SchemaRegistry>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const register = (
  subject: string,
  schema: Input,
  options?: { readonly mode?: SchemaCompatibility.Mode | undefined }
): Effect.Effect<Registration, RegisterError, SchemaRegistry> =>
  SchemaRegistry.use((registry) => registry.register(subject, schema, options))

/**
 * Checks a candidate against one registered version of `subject`, under the subject's mode, without
 * registering it: as `check` does against the versions its mode selects, but against version `version`
 * only (whatever the mode's transitivity; `NONE` checks nothing). `identical` is `version` when the
 * candidate is that version. Fails with `SchemaNotFound` when the subject has no such version.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SchemaRegistry } from "@sluice/core"
 *
 * const Order = Schema.Struct({ order_id: Schema.String })
 * // would Order still read what version 1 of "orders" described?
 * const program = SchemaRegistry.checkVersion("orders", Order, 1) // Effect<CheckResult, …, SchemaRegistry>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const checkVersion = Effect.fn("SchemaRegistry.checkVersion")(function*(
  subject: string,
  schema: Input,
  version: number
) {
  const registry = yield* SchemaRegistry
  yield* requireSubject(subject)
  const prepared = yield* prepare(schema)
  const found = yield* registry.get(subject, version)
  const mode = yield* registry.mode(subject)
  return evaluate({ subject, mode, ...prepared, versions: [found] })
})
