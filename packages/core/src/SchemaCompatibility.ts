/**
 * Schema compatibility: whether a new version of a record schema can replace an older one, decided
 * by the modes of a schema registry (Confluent Schema Registry semantics), without a database.
 *
 * **What is compared**
 *
 * A version is stored and compared as a {@link Definition}: effect's own schema representation
 * (`SchemaRepresentation.toRepresentation`) of the schema's **encoded side** — the shape of the JSON a
 * Sluice transform decodes — persisted with `SchemaRepresentation.toJson`. It was chosen over effect's
 * JSON Schema export because:
 * - it is exact where the JSON Schema export approximates: every built-in check keeps its id and
 *   parameters (`isInt`, `isBetween`, `isGreaterThan`, `isMultipleOf`, lengths, patterns), while the
 *   export drops some of them (e.g. the bounds of a plain `Number`, which it encodes as a number or
 *   the strings `"NaN"`/`"Infinity"`), so a narrowing like `number → number between 1 and 5` would go
 *   unseen;
 * - it is what the decoder runs: `optionalKey` vs required, `NullOr`, literals, tuples, records,
 *   declarations, all in one closed vocabulary, with a versioned JSON codec that round-trips.
 *
 * JSON Schema stays the exchange format: {@link fromJsonSchema} imports a JSON Schema document
 * (through `SchemaRepresentation.fromJsonSchemaDocument`), and {@link toJsonSchema} exports a
 * definition for people and tools.
 *
 * **Rules** (reader = the schema that decodes, writer = the schema the data was written with)
 *
 * A reader can read a writer's data when every value the writer allows is accepted by the reader:
 * - a field the reader requires must be required by the writer (absent: `REQUIRED_FIELD_ADDED`
 *   under BACKWARD, `REQUIRED_FIELD_REMOVED` under FORWARD; optional in the writer:
 *   `FIELD_MADE_REQUIRED` / `FIELD_MADE_OPTIONAL`);
 * - BACKWARD also refuses removing a required field (`REQUIRED_FIELD_REMOVED`): stricter than a
 *   registry whose readers only decode, because a pipeline's new version also feeds the table and
 *   the readers downstream that rely on the field. So a rename of a required field, or its removal,
 *   is refused under every mode but NONE; removing an optional or defaulted field stays compatible;
 * - a field the reader does not declare is ignored (effect's decoder drops unknown fields), so
 *   adding or removing an optional or defaulted field is always fine;
 * - the writer's type must be a subtype of the reader's, recursively through structs, arrays,
 *   tuples, records, unions and nullables; otherwise `TYPE_NARROWED` (new ⊂ old, under BACKWARD),
 *   `TYPE_WIDENED` (new ⊃ old, under FORWARD) or `TYPE_CHANGED` (neither).
 *
 * BACKWARD checks the new schema as reader of the old one's data; FORWARD the old schema as reader
 * of the new one's data; FULL both; the `_TRANSITIVE` modes against every earlier version instead of
 * the latest; NONE checks nothing. A rename is a removal plus an addition.
 *
 * **Gotchas**
 *
 * - Records are JSON: numbers are finite (`Number` and `Finite` are one type), `undefined` is an
 *   absent key (`optional(X)` is `optionalKey(X)`), lengths in UTF-16 units and in code points are
 *   taken as one measure, and an index signature of any JSON value (JSON Schema's
 *   `additionalProperties: true`) is the same as none.
 * - Only the encoded side is stored: a decoding default (`withDecodingDefaultKey`) makes a field
 *   optional; its value is not part of the definition, so changing a default is not a new version.
 * - A check effect cannot name (a custom `Schema.makeFilter`) is compared by its description
 *   annotation only; a reader that gains one is refused (`TYPE_NARROWED`), since nothing proves the
 *   old data passes it.
 *
 * @since 0.1.0
 */
import { Effect, JsonSchema, Predicate, Result, Schema, SchemaRepresentation } from "effect"
import * as Engine from "./internal/compatibility.ts"
import * as Vocabulary from "./internal/jsonSchemaVocabulary.ts"

// ---------------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------------

/**
 * The compatibility modes of a subject, as in Confluent Schema Registry.
 *
 * @since 0.1.0
 * @category models
 */
export const Mode = Schema.Literals([
  "BACKWARD",
  "BACKWARD_TRANSITIVE",
  "FORWARD",
  "FORWARD_TRANSITIVE",
  "FULL",
  "FULL_TRANSITIVE",
  "NONE"
])

/**
 * @since 0.1.0
 * @category models
 */
export type Mode = typeof Mode.Type

/**
 * The mode of a subject that was never given one: `BACKWARD`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMode: Mode = "BACKWARD"

/**
 * Which way data flows in one check: `BACKWARD` (the new schema reads data written with the old one)
 * or `FORWARD` (the old schema reads data written with the new one).
 *
 * @since 0.1.0
 * @category models
 */
export const Direction = Schema.Literals(["BACKWARD", "FORWARD"])

/**
 * @since 0.1.0
 * @category models
 */
export type Direction = typeof Direction.Type

/**
 * The directions a mode checks, and whether against every earlier version (`transitive`) or the
 * latest only.
 *
 * @example
 * ```ts
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * SchemaCompatibility.checksOf("FULL_TRANSITIVE") // { directions: ["BACKWARD", "FORWARD"], transitive: true }
 * ```
 *
 * @since 0.1.0
 * @category modes
 */
export const checksOf = (
  mode: Mode
): { readonly directions: ReadonlyArray<Direction>; readonly transitive: boolean } => {
  const transitive = mode.endsWith("_TRANSITIVE")
  const base = transitive ? mode.slice(0, -"_TRANSITIVE".length) : mode
  const directions: ReadonlyArray<Direction> = base === "BACKWARD"
    ? ["BACKWARD"]
    : base === "FORWARD"
    ? ["FORWARD"]
    : base === "FULL"
    ? ["BACKWARD", "FORWARD"]
    : []
  return { directions, transitive }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A schema cannot be turned into a {@link Definition}: a JSON Schema document effect cannot import,
 * a malformed stored definition, or a schema with parts that have no JSON form (a local symbol).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSchema extends Schema.TaggedError<InvalidSchema>("@sluice/core/SchemaCompatibility/InvalidSchema")(
  "InvalidSchema",
  { message: Schema.String }
) {}

/**
 * The rule a {@link Violation} breaks.
 *
 * @since 0.1.0
 * @category models
 */
export const Rule = Schema.Literals([
  "REQUIRED_FIELD_ADDED",
  "REQUIRED_FIELD_REMOVED",
  "FIELD_MADE_REQUIRED",
  "FIELD_MADE_OPTIONAL",
  "TYPE_NARROWED",
  "TYPE_WIDENED",
  "TYPE_CHANGED"
])

/**
 * @since 0.1.0
 * @category models
 */
export type Rule = typeof Rule.Type

const ruleLabels: Record<Rule, string> = {
  REQUIRED_FIELD_ADDED: "required field added",
  REQUIRED_FIELD_REMOVED: "required field removed",
  FIELD_MADE_REQUIRED: "optional field made required",
  FIELD_MADE_OPTIONAL: "required field made optional",
  TYPE_NARROWED: "narrowing",
  TYPE_WIDENED: "widening",
  TYPE_CHANGED: "incompatible change"
}

/**
 * Renders a path: `items[].price`, `pair[1]`, `attributes.*`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatPath = (path: ReadonlyArray<string | number>): string =>
  path.reduce<string>(
    (out, segment) =>
      Predicate.isNumber(segment)
        ? `${out}[${segment}]`
        : segment === "[]"
        ? `${out}[]`
        : out === ""
        ? segment
        : `${out}.${segment}`,
    ""
  )

/**
 * One reason a schema cannot replace another: which check (`direction`), which rule, where
 * (`path`), against which earlier version, and the types before and after.
 *
 * @example
 * ```ts
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * new SchemaCompatibility.Violation({
 *   direction: "BACKWARD",
 *   rule: "TYPE_CHANGED",
 *   path: ["customer_id"],
 *   previous: "number",
 *   candidate: "string"
 * }).message // 'BACKWARD: field "customer_id" changed type from number to string (incompatible change)'
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export class Violation extends Schema.Class<Violation>("@sluice/core/SchemaCompatibility/Violation")({
  direction: Direction,
  rule: Rule,
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
  /** The earlier version checked against, when known. */
  version: Schema.optionalKey(Schema.Int),
  /** The type in the earlier version (absent when the field does not exist there). */
  previous: Schema.optionalKey(Schema.String),
  /** The type in the candidate (absent when the field does not exist there). */
  candidate: Schema.optionalKey(Schema.String)
}) {
  /** The rendered path, e.g. `items[].price`; `""` for the record itself. */
  get field(): string {
    return formatPath(this.path)
  }

  get message(): string {
    const where = this.path.length === 0 ? "the record" : `field "${this.field}"`
    const what = this.rule === "REQUIRED_FIELD_ADDED"
      ? `${where} added as required without a default`
      : this.rule === "REQUIRED_FIELD_REMOVED"
      ? `required ${where} removed`
      : this.rule === "FIELD_MADE_REQUIRED"
      ? `${where} changed from optional to required`
      : this.rule === "FIELD_MADE_OPTIONAL"
      ? `${where} changed from required to optional`
      : `${where} changed type from ${this.previous ?? "?"} to ${this.candidate ?? "?"}`
    const against = this.version === undefined ? "" : `, against version ${this.version}`
    return `${this.direction}: ${what} (${ruleLabels[this.rule]}${against})`
  }
}

/**
 * A schema was refused by the mode of its subject: every violation is listed, each with its field
 * path and rule.
 *
 * @example
 * ```ts
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const error = new SchemaCompatibility.SchemaIncompatible({
 *   subject: "orders",
 *   mode: "BACKWARD",
 *   violations: [
 *     new SchemaCompatibility.Violation({ direction: "BACKWARD", rule: "REQUIRED_FIELD_ADDED", path: ["vat"] })
 *   ]
 * })
 * error.message
 * // 'schema of "orders" is incompatible under BACKWARD: BACKWARD: field "vat" added as required without a default (required field added)'
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaIncompatible
  extends Schema.TaggedError<SchemaIncompatible>("@sluice/core/SchemaCompatibility/SchemaIncompatible")(
    "SchemaIncompatible",
    { subject: Schema.String, mode: Mode, violations: Schema.Array(Violation) }
  )
{
  override get message(): string {
    return `schema of "${this.subject}" is incompatible under ${this.mode}: ${
      this.violations.map((v) => v.message).join("; ")
    }`
  }
}

// ---------------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------------

const DefinitionTypeId = "~@sluice/core/SchemaCompatibility/Definition"

/**
 * A version of a schema as stored and compared: effect's representation document of the schema's
 * encoded side. `json` is the persisted form (`SchemaRepresentation.toJson`); `canonical` is its
 * structure (annotations left out) as canonical JSON, the basis of {@link fingerprint}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Definition {
  readonly [DefinitionTypeId]: typeof DefinitionTypeId
  readonly json: Schema.Json
  readonly document: SchemaRepresentation.Document
  readonly canonical: string
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isDefinition = (u: unknown): u is Definition => Predicate.hasProperty(u, DefinitionTypeId)

const keptAnnotations = ["title", "description", "documentation", "examples"] as const

const pruneAnnotations = (
  annotations: Schema.Annotations.Annotations | undefined
): Schema.Annotations.Annotations | undefined => {
  if (annotations === undefined) return undefined
  const out: Record<string, unknown> = {}
  for (const key of keptAnnotations) if (annotations[key] !== undefined) out[key] = annotations[key]
  return Object.keys(out).length === 0 ? undefined : out
}

const describeAnnotations = (annotations: Schema.Annotations.Annotations | undefined): string | null => {
  for (const key of ["description", "title", "expected", "message"]) {
    const value = annotations?.[key]
    if (Predicate.isString(value) && value.length > 0) return value
  }
  return null
}

type Rep = SchemaRepresentation.Representation
type Check = SchemaRepresentation.Check

const withAnnotations = <A extends object>(
  base: A,
  annotations: Schema.Annotations.Annotations | undefined
): A => {
  const pruned = pruneAnnotations(annotations)
  return pruned === undefined ? base : { ...base, annotations: pruned }
}

const persistableCheck = (check: Check): Check => {
  if (check._tag === "FilterGroup") {
    return withAnnotations({
      _tag: "FilterGroup",
      ...(check.representation === undefined ? {} : { representation: persistableAnnotation(check.representation) }),
      checks: [persistableCheck(check.checks[0]), ...check.checks.slice(1).map(persistableCheck)]
    }, check.annotations)
  }
  return withAnnotations({
    _tag: "Filter",
    aborted: check.aborted,
    representation: check.representation === undefined
      ? { id: Engine.opaqueCheckId, payload: { description: describeAnnotations(check.annotations) } }
      : persistableAnnotation(check.representation)
  }, check.annotations)
}

const persistableAnnotation = (
  annotation: SchemaRepresentation.CheckRepresentationAnnotation<Rep>
): SchemaRepresentation.CheckRepresentationAnnotation<Rep> =>
  annotation.schemas === undefined ? annotation : { ...annotation, schemas: annotation.schemas.map(persistable) }

/** The same representation with custom checks and declarations named, and only documentation annotations. */
const persistable = (rep: Rep): Rep => {
  switch (rep._tag) {
    case "Reference":
      return rep
    case "Suspend":
      return withAnnotations({ _tag: "Suspend", checks: [], thunk: persistable(rep.thunk) }, rep.annotations)
    case "Declaration":
      return withAnnotations({
        _tag: "Declaration",
        representation: rep.representation ?? {
          id: Engine.opaqueDeclarationId,
          payload: { description: describeAnnotations(rep.annotations) }
        },
        typeParameters: rep.typeParameters.map(persistable),
        checks: rep.checks.map(persistableCheck)
      }, rep.annotations)
    case "String":
      return withAnnotations({
        _tag: "String",
        checks: rep.checks.map(persistableCheck),
        ...(rep.content === undefined ? {} : {
          content: {
            mediaType: rep.content.mediaType,
            ...(rep.content.schema === undefined ? {} : { schema: persistable(rep.content.schema) })
          }
        })
      }, rep.annotations)
    case "TemplateLiteral":
      return withAnnotations(
        { _tag: "TemplateLiteral", checks: rep.checks.map(persistableCheck), parts: rep.parts.map(persistable) },
        rep.annotations
      )
    case "Arrays":
      return withAnnotations({
        _tag: "Arrays",
        checks: rep.checks.map(persistableCheck),
        elements: rep.elements.map((e) =>
          withAnnotations({ isOptional: e.isOptional, type: persistable(e.type) }, e.annotations)
        ),
        rest: rep.rest.map(persistable)
      }, rep.annotations)
    case "Objects":
      return withAnnotations({
        _tag: "Objects",
        checks: rep.checks.map(persistableCheck),
        propertySignatures: rep.propertySignatures.map((p) =>
          withAnnotations({
            name: p.name,
            type: persistable(p.type),
            isOptional: p.isOptional,
            isMutable: p.isMutable
          }, p.annotations)
        ),
        indexSignatures: rep.indexSignatures.map((s) => ({
          parameter: persistable(s.parameter),
          type: persistable(s.type)
        }))
      }, rep.annotations)
    case "Union":
      return withAnnotations({
        _tag: "Union",
        checks: rep.checks.map(persistableCheck),
        types: rep.types.map(persistable),
        ...(rep.options === undefined ? {} : { options: rep.options })
      }, rep.annotations)
    default:
      return withAnnotations({ ...rep, checks: rep.checks.map(persistableCheck) }, rep.annotations) as Rep
  }
}

const structure = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(structure)
  if (Predicate.isObject(value)) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key]
      // `references` maps names to representations: its keys are data, never annotations
      if (key === "references" && Predicate.isObject(v)) {
        const refs: Record<string, unknown> = {}
        for (const name of Object.keys(v).sort()) refs[name] = structure((v as Record<string, unknown>)[name])
        out[key] = refs
      } else if (key !== "annotations" && v !== undefined) {
        out[key] = structure(v)
      }
    }
    return out
  }
  return value
}

const makeDefinition = (json: Schema.Json, document: SchemaRepresentation.Document): Definition => ({
  [DefinitionTypeId]: DefinitionTypeId,
  json,
  document,
  canonical: JSON.stringify(structure(json))
})

const messageOf = (error: unknown): string => {
  const text = Predicate.hasProperty(error, "message") && Predicate.isString(error.message)
    ? error.message
    : String(error)
  return text.split("\n").map((line) => line.trim()).filter((line) => line.length > 0).join(" ")
}

/**
 * The definition of an effect schema: the representation of its encoded side.
 *
 * @example
 * ```ts
 * import { Result, Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const definition = Result.getOrThrow(
 *   SchemaCompatibility.fromSchema(Schema.Struct({ id: Schema.Int, note: Schema.optionalKey(Schema.String) }))
 * )
 * SchemaCompatibility.describe(definition) // "{ id: int, note?: string }"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchema = (schema: Schema.Top): Result.Result<Definition, InvalidSchema> =>
  Result.try({
    try: () => {
      const live = SchemaRepresentation.toRepresentation(schema.ast)
      const references: Record<string, Rep> = {}
      for (const [name, rep] of Object.entries(live.references)) references[name] = persistable(rep)
      const json = SchemaRepresentation.toJson({ representation: persistable(live.representation), references })
      return makeDefinition(json, SchemaRepresentation.fromJson(json))
    },
    catch: (error) => new InvalidSchema({ message: `schema has no JSON representation: ${messageOf(error)}` })
  })

/**
 * A stored definition, from its JSON form (as written by {@link fromSchema} to a table or a file).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromJson = (json: unknown): Result.Result<Definition, InvalidSchema> =>
  Result.try({
    try: () => {
      const document = SchemaRepresentation.fromJson(json as Schema.Json)
      return makeDefinition(SchemaRepresentation.toJson(document), document)
    },
    catch: (error) => new InvalidSchema({ message: `not a schema representation: ${messageOf(error)}` })
  })

/**
 * A definition from a JSON Schema document (draft 2020-12, or draft-07 when its `$schema` says so),
 * imported with effect's `SchemaRepresentation.fromJsonSchemaDocument`.
 *
 * **Gotchas**
 *
 * The document is checked first against the vocabulary Sluice understands, and refused with the
 * JSON path of the first problem (`properties.amount.type: unknown type "strnig"`): an unknown
 * `type`, an unknown keyword (a typo such as `requried` would otherwise constrain nothing), a
 * keyword with no equivalent here (`not`, `if`/`then`/`else`, `contains`, `dependentRequired`,
 * `unevaluatedProperties`, `$dynamicRef`…), or a keyword whose value has the wrong form
 * (`"minLength": "3"`). `format`, `contentEncoding` and `contentMediaType` are accepted as
 * annotations (they constrain nothing, as in draft 2020-12). `maxLength` becomes a code-point count
 * (the same measure here), `additionalProperties: true` an index signature of any value (the same
 * as none). `additionalProperties: false` is refused: a record's undeclared fields are dropped (or
 * kept for a table's `Contract`), never rejected by its schema, so it cannot be honoured.
 *
 * A property with a `"default"` is optional, even when `required` lists it: a record without it is
 * complete, the default standing in (as with Avro and Confluent's rules), so adding a field with a
 * default is a compatible addition under BACKWARD — the same as `withDefault` in an effect schema.
 * As there, only the encoded side is stored: the default's value is not part of the definition
 * (the pipeline's own schema applies it when decoding). A default that is not a value of its
 * property is refused (`properties.currency.default: 5 is not a value of the property`).
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const definition = Result.getOrThrow(SchemaCompatibility.fromJsonSchema({
 *   type: "object",
 *   properties: { id: { type: "integer" }, note: { type: "string" } },
 *   required: ["id"]
 * }))
 * SchemaCompatibility.describe(definition) // "{ id: int, note?: string }"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromJsonSchema = (document: unknown): Result.Result<Definition, InvalidSchema> => {
  if (!(Predicate.isObject(document) || Predicate.isBoolean(document)) || Array.isArray(document)) {
    return Result.fail(new InvalidSchema({ message: "a JSON Schema document must be an object" }))
  }
  return Result.try({
    try: () => {
      const raw = (Predicate.isBoolean(document) ? (document ? {} : { not: {} }) : document) as JsonSchema.JsonSchema
      const draft07 = Predicate.isString(raw["$schema"]) && raw["$schema"].includes("draft-07")
      const problem = Vocabulary.firstProblem(document, { draft07 })
      if (problem !== undefined) {
        throw new InvalidSchema({
          message: problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`
        })
      }
      const load = (document: JsonSchema.JsonSchema) =>
        SchemaRepresentation.fromJsonSchemaDocument(
          draft07 ? JsonSchema.fromSchemaDraft07(document) : JsonSchema.fromSchemaDraft2020_12(document),
          { patterns: "apply" }
        )
      // a default must be a value of its property: records without the property get it
      for (const { path, schema, value } of Vocabulary.defaulted(raw)) {
        const property = Vocabulary.defaultsOptional({
          ...schema,
          ...(raw["$defs"] === undefined ? {} : { $defs: raw["$defs"] }),
          ...(raw["definitions"] === undefined ? {} : { definitions: raw["definitions"] })
        }) as JsonSchema.JsonSchema
        if (!Schema.is(load(property))(value)) {
          throw new InvalidSchema({
            message: `${path}.default: ${JSON.stringify(value)} is not a value of the property`
          })
        }
      }
      return load(Vocabulary.defaultsOptional(raw) as JsonSchema.JsonSchema)
    },
    catch: (error) =>
      error instanceof InvalidSchema
        ? error
        : new InvalidSchema({ message: `cannot import the JSON Schema: ${messageOf(error)}` })
  }).pipe(Result.flatMap(fromSchema))
}

/**
 * A definition from a JSON document that is either a stored representation (an object with
 * `representation` and `references`, as {@link toJson} writes) or a JSON Schema document.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (document: unknown): Result.Result<Definition, InvalidSchema> =>
  Predicate.hasProperty(document, "representation") && Predicate.hasProperty(document, "references")
    ? fromJson(document)
    : fromJsonSchema(document)

/**
 * A definition from an effect schema or a definition (returned as is).
 *
 * @since 0.1.0
 * @category constructors
 */
export const toDefinition = (input: Schema.Top | Definition): Result.Result<Definition, InvalidSchema> =>
  isDefinition(input) ? Result.succeed(input) : fromSchema(input)

/**
 * The SHA-256 of a definition's structure (its canonical JSON without annotations), as 64 hex
 * digits. Two definitions with one fingerprint accept exactly the same records.
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const fingerprint = (definition: Definition): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(definition.canonical))),
    (digest) => [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
  )

/**
 * A one-line, TypeScript-like summary of a definition, e.g. `{ id: int (> 0), note?: string }`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (definition: Definition): string =>
  Engine.describe(definition.document.representation, definition.document.references, 3)

const isReviver = (u: unknown): u is SchemaRepresentation.AnyReviver =>
  Predicate.hasProperty(u, "id") && Predicate.isString(u.id) && Predicate.hasProperty(u, "payloadSchema") &&
  Predicate.hasProperty(u, "revive") && Predicate.isFunction(u.revive)

/** Effect's built-in revivers, and ours for custom checks (no constraint) and declarations (any value). */
const revivers: ReadonlyArray<SchemaRepresentation.AnyReviver> = [
  ...(Object.values(SchemaRepresentation) as ReadonlyArray<unknown>).filter(isReviver),
  SchemaRepresentation.makeReviverFilter(
    Engine.opaqueCheckId,
    Schema.Unknown,
    () => Schema.makeFilter(() => true, { toJsonSchema: () => [{}, true] })
  ),
  SchemaRepresentation.makeReviverDeclaration(Engine.opaqueDeclarationId, Schema.Unknown, () => Schema.Unknown)
]

/**
 * The top-level fields of a definition whose root is a struct, each with whether it is optional
 * (absent in some records: optional, or defaulted when decoded) and a short description of its type.
 * Empty for any other root.
 *
 * @example
 * ```ts
 * import { Result, Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const definition = Result.getOrThrow(SchemaCompatibility.fromSchema(
 *   Schema.Struct({ id: Schema.Int, currency: SchemaCompatibility.withDefault(Schema.String, "USD") })
 * ))
 * SchemaCompatibility.fields(definition)
 * // [{ name: "id", optional: false, type: "int" }, { name: "currency", optional: true, type: "string" }]
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const fields = (
  definition: Definition
): ReadonlyArray<{ readonly name: string; readonly optional: boolean; readonly type: string }> => {
  const { references } = definition.document
  let root = definition.document.representation
  for (let i = 0; i < 100 && (root._tag === "Reference" || root._tag === "Suspend"); i++) {
    const next: Rep | undefined = root._tag === "Reference" ? references[root.$ref] : root.thunk
    if (next === undefined) break
    root = next
  }
  if (root._tag !== "Objects") return []
  return root.propertySignatures.map((p) => ({
    name: String(p.name),
    optional: p.isOptional,
    type: Engine.describe(p.type, references, 2)
  }))
}

const nonFiniteStrings = new Set(["NaN", "Infinity", "-Infinity"])

/** Effect's exporter writes a number as "a number or one of the strings NaN/Infinity": keep the number. */
const tidyJsonSchema = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(tidyJsonSchema)
  if (!Predicate.isObject(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) out[key] = tidyJsonSchema(v)
  const anyOf = out["anyOf"]
  if (Array.isArray(anyOf)) {
    const isNumber = (s: unknown) => Predicate.isObject(s) && (s["type"] === "number" || s["type"] === "integer")
    const isNonFinite = (s: unknown) =>
      Predicate.isObject(s) && s["type"] === "string" && Array.isArray(s["enum"]) &&
      s["enum"].every((e) => Predicate.isString(e) && nonFiniteStrings.has(e))
    if (anyOf.some(isNumber) && anyOf.some(isNonFinite)) {
      const kept = anyOf.filter((s) => !isNonFinite(s))
      delete out["anyOf"]
      const only = kept[0]
      if (kept.length === 1 && Predicate.isObject(only) && Object.keys(only).every((k) => !(k in out))) {
        return { ...only, ...out }
      }
      out["anyOf"] = kept
    }
  }
  return out
}

/**
 * The definition as a JSON Schema (draft 2020-12) document, with `$schema` and `$defs`: for people
 * (`sluice schema show`) and for other tools. {@link fromJsonSchema} reads it back.
 *
 * **Gotchas**
 *
 * JSON Schema cannot say everything a definition does: custom checks are left out, so a document
 * written back from this one may be wider than the definition (fine under BACKWARD).
 *
 * @since 0.1.0
 * @category formatting
 */
export const toJsonSchema = (definition: Definition): Schema.JsonObject => {
  // checks compile to JSON Schema through the callbacks of live checks: revive them first
  const revived = Result.try(() =>
    Schema.toJsonSchemaDocument(SchemaRepresentation.fromRepresentation(definition.document, { revivers }))
  )
  const document = Result.isSuccess(revived)
    ? revived.success
    : SchemaRepresentation.toJsonSchemaDocument(definition.document)
  const definitions = tidyJsonSchema(document.definitions) as Record<string, unknown>
  return {
    $schema: JsonSchema.META_SCHEMA_URI_DRAFT_2020_12,
    ...(tidyJsonSchema(document.schema) as Record<string, Schema.Json>),
    ...(Object.keys(definitions).length === 0 ? {} : { $defs: definitions as Schema.JsonObject })
  }
}

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

/**
 * Can `reader` decode every record written with `writer`?
 *
 * @example
 * ```ts
 * import { Result, Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const v1 = Result.getOrThrow(SchemaCompatibility.fromSchema(Schema.Struct({ id: Schema.Number })))
 * const v2 = Result.getOrThrow(SchemaCompatibility.fromSchema(Schema.Struct({ id: Schema.Int })))
 * SchemaCompatibility.canRead(v1, v2) // true: every int is a number
 * SchemaCompatibility.canRead(v2, v1) // false: 1.5 is not an int
 * ```
 *
 * @since 0.1.0
 * @category checking
 */
export const canRead = (reader: Definition, writer: Definition): boolean =>
  Engine.subsumes(writer.document.representation, reader.document.representation, {
    w: writer.document.references,
    r: reader.document.references
  }).length === 0

/**
 * The violations of one check between an earlier version and a candidate, in one direction.
 *
 * @example
 * ```ts
 * import { Result, Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const v1 = Result.getOrThrow(SchemaCompatibility.fromSchema(Schema.Struct({ customer_id: Schema.Number })))
 * const v2 = Result.getOrThrow(SchemaCompatibility.fromSchema(Schema.Struct({ customer_id: Schema.String })))
 * SchemaCompatibility.compare(v1, v2, "BACKWARD", 1).map((v) => v.message)
 * // ['BACKWARD: field "customer_id" changed type from number to string (incompatible change, against version 1)']
 * ```
 *
 * @since 0.1.0
 * @category checking
 */
export const compare = (
  previous: Definition,
  candidate: Definition,
  direction: Direction,
  version?: number
): ReadonlyArray<Violation> => {
  const [writer, reader] = direction === "BACKWARD" ? [previous, candidate] : [candidate, previous]
  const sides: Engine.Sides = { w: writer.document.references, r: reader.document.references }
  const issues = Engine.subsumes(writer.document.representation, reader.document.representation, sides)
  const describe = (rep: Rep, refs: SchemaRepresentation.References) => Engine.describe(rep, refs, 1)
  // Sluice's BACKWARD also keeps every required field: the pipeline's table and its readers rely on it;
  // a struct replaced by a schema that accepts anything (`{}`) drops each of its required fields
  const removed = direction === "BACKWARD"
    ? Engine.subsumes(candidate.document.representation, previous.document.representation, {
      w: candidate.document.references,
      r: previous.document.references
    }).flatMap((issue) =>
      issue._tag === "Missing"
        ? [issue.path]
        : issue._tag === "Type"
        ? Engine.requiredFieldsDropped(issue.writer, issue.reader, {
          replacement: candidate.document.references,
          struct: previous.document.references
        }).map((name) => [...issue.path, name])
        : []
    ).map((path) =>
      new Violation({
        direction,
        path,
        ...(version === undefined ? {} : { version }),
        rule: "REQUIRED_FIELD_REMOVED"
      })
    )
    : []
  return [
    ...issues.map((issue) => {
      const base = { direction, path: issue.path, ...(version === undefined ? {} : { version }) }
      switch (issue._tag) {
        case "Missing":
          return new Violation({
            ...base,
            rule: direction === "BACKWARD" ? "REQUIRED_FIELD_ADDED" : "REQUIRED_FIELD_REMOVED"
          })
        case "Optional":
          return new Violation({
            ...base,
            rule: direction === "BACKWARD" ? "FIELD_MADE_REQUIRED" : "FIELD_MADE_OPTIONAL"
          })
        case "Type": {
          // the reverse question tells narrowing and widening from a change of type
          const reverse = Engine.subsumes(issue.reader, issue.writer, { w: sides.r, r: sides.w }, issue.path)
          const rule: Rule = reverse.length > 0
            ? "TYPE_CHANGED"
            : direction === "BACKWARD"
            ? "TYPE_NARROWED"
            : "TYPE_WIDENED"
          const writerText = describe(issue.writer, sides.w)
          const readerText = describe(issue.reader, sides.r)
          return new Violation({
            ...base,
            rule,
            previous: direction === "BACKWARD" ? writerText : readerText,
            candidate: direction === "BACKWARD" ? readerText : writerText
          })
        }
      }
    }),
    ...removed
  ]
}

/**
 * An earlier version of a subject, as the checks see it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Version {
  readonly version: number
  readonly definition: Definition
}

/**
 * The violations of a candidate against the earlier versions of a subject under `mode`: the latest
 * version only, or every one for a `_TRANSITIVE` mode. Empty: the candidate may be registered.
 *
 * @example
 * ```ts
 * import { Result, Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const definition = (schema: Schema.Top) => Result.getOrThrow(SchemaCompatibility.fromSchema(schema))
 * const v1 = definition(Schema.Struct({ id: Schema.String }))
 * const v2 = definition(Schema.Struct({ id: Schema.String, currency: Schema.optionalKey(Schema.String) }))
 * SchemaCompatibility.violations(v2, [{ version: 1, definition: v1 }], "FULL") // []
 * ```
 *
 * @since 0.1.0
 * @category checking
 */
export const violations = (
  candidate: Definition,
  previous: ReadonlyArray<Version>,
  mode: Mode
): ReadonlyArray<Violation> => {
  const { directions, transitive } = checksOf(mode)
  const sorted = [...previous].sort((a, b) => a.version - b.version)
  const against = transitive ? sorted : sorted.slice(-1)
  return against.flatMap((earlier) =>
    directions.flatMap((direction) => compare(earlier.definition, candidate, direction, earlier.version))
  )
}

/**
 * Succeeds when a candidate may follow the earlier versions of `subject` under `mode`, else fails
 * with every violation.
 *
 * @example
 * ```ts
 * import { Effect, Result, Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const definition = (schema: Schema.Top) => Result.getOrThrow(SchemaCompatibility.fromSchema(schema))
 * const v1 = definition(Schema.Struct({ id: Schema.String }))
 * const v2 = definition(Schema.Struct({ id: Schema.String, vat: Schema.Number }))
 * const program = SchemaCompatibility.assertCompatible({
 *   subject: "orders",
 *   mode: "BACKWARD",
 *   candidate: v2,
 *   previous: [{ version: 1, definition: v1 }]
 * }) // fails: BACKWARD: field "vat" added as required without a default
 * ```
 *
 * @since 0.1.0
 * @category checking
 */
export const assertCompatible = (options: {
  readonly subject: string
  readonly mode: Mode
  readonly candidate: Definition
  readonly previous: ReadonlyArray<Version>
}): Effect.Effect<void, SchemaIncompatible> => {
  const found = violations(options.candidate, options.previous, options.mode)
  return found.length === 0
    ? Effect.void
    : Effect.fail(new SchemaIncompatible({ subject: options.subject, mode: options.mode, violations: found }))
}

// ---------------------------------------------------------------------------------------------
// Evolving a schema
// ---------------------------------------------------------------------------------------------

/**
 * A field added in a later version, with the value records written before it get: optional on the
 * encoded side (so the change is backward compatible), always present once decoded.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const OrderV2 = Schema.Struct({
 *   order_id: Schema.String,
 *   currency: SchemaCompatibility.withDefault(Schema.String, "USD")
 * })
 * Schema.decodeUnknownSync(OrderV2)({ order_id: "a" }) // { order_id: "a", currency: "USD" }
 * ```
 *
 * @since 0.1.0
 * @category evolution
 */
export const withDefault = <S extends Schema.Top>(
  schema: S,
  value: S["Type"]
): Schema.withDecodingDefaultTypeKey<S> => schema.pipe(Schema.withDecodingDefaultTypeKey(Effect.succeed(value)))

/**
 * A nullable field added in a later version: records written before it decode with `null`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SchemaCompatibility } from "@sluice/core"
 *
 * const OrderV3 = Schema.Struct({ order_id: Schema.String, loyalty_points: SchemaCompatibility.nullable(Schema.Int) })
 * Schema.decodeUnknownSync(OrderV3)({ order_id: "a" }) // { order_id: "a", loyalty_points: null }
 * ```
 *
 * @since 0.1.0
 * @category evolution
 */
export const nullable = <S extends Schema.Top>(
  schema: S
): Schema.withDecodingDefaultTypeKey<Schema.NullOr<S>> => withDefault(Schema.NullOr(schema), null)
