/**
 * The engine of `SchemaCompatibility`: "can a reader with schema R read every value written with
 * schema W?", decided structurally on effect's schema representation (the encoded side of a record
 * schema, which is what a Sluice transform decodes from parsed JSON).
 *
 * `subsumes(writer, reader)` lists {@link Issue}s: the places where some value that W allows may be
 * refused by R. No issue means W ⊆ R. The answer is conservative: when a constraint cannot be
 * compared (a custom check, an unknown declaration), it counts as an issue.
 *
 * @internal
 */
import { Predicate, Result, type Schema, type SchemaAST, type SchemaRepresentation } from "effect"

type Rep = SchemaRepresentation.Representation
type Refs = SchemaRepresentation.References
type Check = SchemaRepresentation.Check

/** A path into a record: field names, tuple indexes, `"[]"` for any array item, `"*"` for any key. */
export type Path = ReadonlyArray<string | number>

/** @internal */
export type Issue =
  /** The reader requires a field that the writer never writes. */
  | { readonly _tag: "Missing"; readonly path: Path }
  /** The reader requires a field that the writer may leave out. */
  | { readonly _tag: "Optional"; readonly path: Path }
  /** A value the writer may write is not accepted by the reader. */
  | { readonly _tag: "Type"; readonly path: Path; readonly writer: Rep; readonly reader: Rep }

/** Both documents' reference tables: `w` for the writer's, `r` for the reader's. */
export interface Sides {
  readonly w: Refs
  readonly r: Refs
}

/** The id given to a check that has no representation of its own (a custom `Schema.makeFilter`). */
export const opaqueCheckId = "sluice/custom-check"
/** The id given to a declaration that has no representation of its own (a custom `Schema.declare`). */
export const opaqueDeclarationId = "sluice/custom-declaration"

const effectId = (name: string) => `effect/schema/${name}`
const jsonId = effectId("Json")
/** Effect's JSON encoding of a non-finite number; JSON readers of a plain `number` never see these. */
const nonFinite = new Set(["NaN", "Infinity", "-Infinity"])

// ---------------------------------------------------------------------------------------------
// Normal forms
// ---------------------------------------------------------------------------------------------

/** A representation with references and suspensions resolved, unions flattened, and JSON noise removed. */
type Node =
  | { readonly k: "any"; readonly rep: Rep }
  | { readonly k: "never"; readonly rep: Rep }
  | {
    readonly k: "null" | "undefined" | "boolean" | "string" | "number" | "bigint" | "symbol" | "object"
    readonly rep: Rep
    readonly checks: ReadonlyArray<Check>
  }
  | { readonly k: "literal"; readonly rep: Rep; readonly value: SchemaAST.LiteralValue }
  | { readonly k: "unique"; readonly rep: SchemaRepresentation.UniqueSymbol }
  | { readonly k: "template"; readonly rep: SchemaRepresentation.TemplateLiteral }
  | { readonly k: "arrays"; readonly rep: SchemaRepresentation.Arrays }
  | { readonly k: "objects"; readonly rep: SchemaRepresentation.Objects }
  | { readonly k: "declaration"; readonly rep: SchemaRepresentation.Declaration }
  | {
    readonly k: "union"
    readonly rep: Rep
    readonly members: ReadonlyArray<Rep>
    readonly checks: ReadonlyArray<Check>
  }

const resolve = (rep: Rep, refs: Refs): Rep => {
  let current = rep
  for (let depth = 0; depth < 1000; depth++) {
    if (current._tag === "Reference") {
      const target = refs[current.$ref]
      if (target === undefined) return { _tag: "Unknown", checks: [] }
      current = target
    } else if (current._tag === "Suspend") {
      current = current.thunk
    } else {
      return current
    }
  }
  return { _tag: "Unknown", checks: [] }
}

/** The members of a union, nested unions flattened, `undefined` dropped (JSON has none). */
const flatten = (rep: Rep, refs: Refs, out: Array<Rep>): void => {
  const resolved = resolve(rep, refs)
  if (resolved._tag === "Union" && resolved.checks.length === 0) {
    for (const member of resolved.types) flatten(member, refs, out)
  } else if (resolved._tag === "Enum" && resolved.checks.length === 0) {
    for (const [, value] of resolved.enums) out.push({ _tag: "Literal", literal: value, checks: [] })
  } else if (resolved._tag !== "Undefined" && resolved._tag !== "Void") {
    out.push(resolved)
  }
}

const normalize = (rep: Rep, refs: Refs): Node => {
  const resolved = resolve(rep, refs)
  switch (resolved._tag) {
    case "Unknown":
    case "Any":
      return { k: "any", rep: resolved }
    case "Never":
      return { k: "never", rep: resolved }
    case "Null":
      return { k: "null", rep: resolved, checks: resolved.checks }
    case "Undefined":
    case "Void":
      return { k: "undefined", rep: resolved, checks: resolved.checks }
    case "Boolean":
      return { k: "boolean", rep: resolved, checks: resolved.checks }
    case "String":
      return { k: "string", rep: resolved, checks: resolved.checks }
    case "Number":
      return { k: "number", rep: resolved, checks: resolved.checks }
    case "BigInt":
      return { k: "bigint", rep: resolved, checks: resolved.checks }
    case "Symbol":
      return { k: "symbol", rep: resolved, checks: resolved.checks }
    case "ObjectKeyword":
      return { k: "object", rep: resolved, checks: resolved.checks }
    case "Literal":
      return { k: "literal", rep: resolved, value: resolved.literal }
    case "UniqueSymbol":
      return { k: "unique", rep: resolved }
    case "TemplateLiteral":
      return { k: "template", rep: resolved }
    case "Arrays":
      return { k: "arrays", rep: resolved }
    case "Objects":
      return { k: "objects", rep: resolved }
    case "Declaration":
      return resolved.representation?.id === jsonId && resolved.checks.length === 0
        ? { k: "any", rep: resolved }
        : { k: "declaration", rep: resolved }
    case "Enum":
    case "Union": {
      const members: Array<Rep> = []
      if (resolved._tag === "Enum") {
        for (const [, value] of resolved.enums) members.push({ _tag: "Literal", literal: value, checks: [] })
      } else {
        for (const member of resolved.types) flatten(member, refs, members)
      }
      const hasNumber = members.some((m) => m._tag === "Number")
      const kept = hasNumber
        ? members.filter((m) => !(m._tag === "Literal" && Predicate.isString(m.literal) && nonFinite.has(m.literal)))
        : members
      if (kept.length === 1 && resolved.checks.length === 0) return normalize(kept[0]!, refs)
      if (kept.length === 0) return { k: "never", rep: resolved }
      return { k: "union", rep: resolved, members: kept, checks: resolved.checks }
    }
    case "Reference":
    case "Suspend":
      return { k: "any", rep: resolved }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks as constraints
// ---------------------------------------------------------------------------------------------

interface Bound {
  readonly value: number
  readonly exclusive: boolean
}

interface Named {
  readonly key: string
  readonly label: string
}

interface Summary {
  readonly int: boolean
  readonly lower: Bound | undefined
  readonly upper: Bound | undefined
  readonly multipleOf: ReadonlyArray<number>
  readonly minLength: number | undefined
  readonly maxLength: number | undefined
  readonly patterns: ReadonlyArray<RegExp | undefined>
  /** Checks compared by identity only (id and payload). */
  readonly named: ReadonlyArray<Named>
}

const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (Predicate.isObject(value)) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
  }
  if (typeof value === "bigint") return JSON.stringify(`${value}n`)
  return JSON.stringify(value) ?? "null"
}

const num = (payload: unknown, key: string): number | undefined => {
  const v = Predicate.isObject(payload) ? (payload as Record<string, unknown>)[key] : undefined
  return Predicate.isNumber(v) ? v : undefined
}

const str = (payload: unknown, key: string): string | undefined => {
  const v = Predicate.isObject(payload) ? (payload as Record<string, unknown>)[key] : undefined
  return Predicate.isString(v) ? v : undefined
}

const annotationText = (annotations: Schema.Annotations.Annotations | undefined): string | undefined => {
  for (const key of ["description", "title", "expected", "message"]) {
    const value = annotations?.[key]
    if (Predicate.isString(value) && value.length > 0) return value
  }
  return undefined
}

const flattenChecks = (checks: ReadonlyArray<Check>, out: Array<SchemaRepresentation.Filter>): void => {
  for (const check of checks) {
    if (check._tag === "FilterGroup") flattenChecks(check.checks, out)
    else out.push(check)
  }
}

const tighterLower = (a: Bound | undefined, b: Bound): Bound =>
  a === undefined || b.value > a.value || (b.value === a.value && b.exclusive) ? b : a
const tighterUpper = (a: Bound | undefined, b: Bound): Bound =>
  a === undefined || b.value < a.value || (b.value === a.value && b.exclusive) ? b : a

const compilePattern = (source: string, flags: string): RegExp | undefined => {
  const result = Result.try(() => new RegExp(source, flags))
  return Result.isSuccess(result) ? result.success : undefined
}

const summarize = (checks: ReadonlyArray<Check>): Summary => {
  const filters: Array<SchemaRepresentation.Filter> = []
  flattenChecks(checks, filters)
  let int = false
  let lower: Bound | undefined
  let upper: Bound | undefined
  let minLength: number | undefined
  let maxLength: number | undefined
  const multipleOf: Array<number> = []
  const patterns: Array<RegExp | undefined> = []
  const named: Array<Named> = []
  const setMin = (n: number | undefined) => {
    if (n !== undefined) minLength = Math.max(minLength ?? 0, n)
  }
  const setMax = (n: number | undefined) => {
    if (n !== undefined) maxLength = Math.min(maxLength ?? Infinity, n)
  }
  for (const filter of filters) {
    const id = filter.representation?.id
    const payload = filter.representation?.payload
    switch (id) {
      case effectId("isFinite"):
        break // JSON numbers are always finite
      case effectId("isInt"):
        int = true
        break
      case effectId("isGreaterThan"): {
        const v = num(payload, "exclusiveMinimum")
        if (v !== undefined) lower = tighterLower(lower, { value: v, exclusive: true })
        break
      }
      case effectId("isGreaterThanOrEqualTo"): {
        const v = num(payload, "minimum")
        if (v !== undefined) lower = tighterLower(lower, { value: v, exclusive: false })
        break
      }
      case effectId("isLessThan"): {
        const v = num(payload, "exclusiveMaximum")
        if (v !== undefined) upper = tighterUpper(upper, { value: v, exclusive: true })
        break
      }
      case effectId("isLessThanOrEqualTo"): {
        const v = num(payload, "maximum")
        if (v !== undefined) upper = tighterUpper(upper, { value: v, exclusive: false })
        break
      }
      case effectId("isBetween"): {
        const min = num(payload, "minimum")
        const max = num(payload, "maximum")
        const p = payload as Record<string, unknown>
        if (min !== undefined) lower = tighterLower(lower, { value: min, exclusive: p["exclusiveMinimum"] === true })
        if (max !== undefined) upper = tighterUpper(upper, { value: max, exclusive: p["exclusiveMaximum"] === true })
        break
      }
      case effectId("isMultipleOf"): {
        const v = num(payload, "divisor")
        if (v !== undefined && v > 0) multipleOf.push(v)
        break
      }
      // Length in UTF-16 units and in code points are taken as one measure (see the module docs).
      case effectId("isMinLength"):
        setMin(num(payload, "minLength"))
        break
      case effectId("isMinCodePoints"):
        setMin(num(payload, "minCodePoints"))
        break
      case effectId("isMaxLength"):
        setMax(num(payload, "maxLength"))
        break
      case effectId("isMaxCodePoints"):
        setMax(num(payload, "maxCodePoints"))
        break
      case effectId("isBetweenLength"):
      case effectId("isBetweenCodePoints"):
        setMin(num(payload, "minimum"))
        setMax(num(payload, "maximum"))
        break
      default: {
        if (id === effectId("isPattern")) {
          patterns.push(compilePattern(str(payload, "source") ?? "", str(payload, "flags") ?? ""))
        }
        const key = id === undefined
          ? `${opaqueCheckId}:${canonicalJson({ description: annotationText(filter.annotations) ?? null })}`
          : `${id}:${canonicalJson(payload ?? null)}:${canonicalJson(filter.representation?.schemas ?? [])}`
        named.push({ key, label: checkLabel(filter) })
      }
    }
  }
  return { int, lower, upper, multipleOf, minLength, maxLength, patterns, named }
}

const checkLabel = (filter: SchemaRepresentation.Filter): string => {
  const id = filter.representation?.id
  const payload = filter.representation?.payload
  if (id === undefined || id === opaqueCheckId) {
    const text = (Predicate.isObject(payload) ? str(payload, "description") : undefined) ??
      annotationText(filter.annotations)
    return text === undefined ? "a custom check" : `custom check "${text}"`
  }
  if (id === effectId("isPattern")) return `matching /${str(payload, "source") ?? ""}/${str(payload, "flags") ?? ""}`
  const name = id.startsWith("effect/schema/") ? id.slice("effect/schema/".length) : id
  return payload === null || payload === undefined ? name : `${name} ${canonicalJson(payload)}`
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** Integer bounds as inclusive integers; `isInt` means a safe integer. */
const intBounds = (s: Summary): { readonly lower: Bound; readonly upper: Bound } => ({
  lower: {
    value: Math.max(
      -MAX_SAFE,
      s.lower === undefined ? -MAX_SAFE : s.lower.exclusive ? Math.floor(s.lower.value) + 1 : Math.ceil(s.lower.value)
    ),
    exclusive: false
  },
  upper: {
    value: Math.min(
      MAX_SAFE,
      s.upper === undefined ? MAX_SAFE : s.upper.exclusive ? Math.ceil(s.upper.value) - 1 : Math.floor(s.upper.value)
    ),
    exclusive: false
  }
})

const isMultiple = (value: number, divisor: number): boolean => {
  const q = value / divisor
  return Math.abs(q - Math.round(q)) < 1e-9
}

const lowerImplies = (w: Bound | undefined, r: Bound | undefined): boolean =>
  r === undefined || (w !== undefined && (w.value > r.value || (w.value === r.value && (!r.exclusive || w.exclusive))))
const upperImplies = (w: Bound | undefined, r: Bound | undefined): boolean =>
  r === undefined || (w !== undefined && (w.value < r.value || (w.value === r.value && (!r.exclusive || w.exclusive))))

/** Does every value allowed by the writer's checks pass the reader's? */
const implies = (writer: Summary, reader: Summary): boolean => {
  const wInt = writer.int || writer.multipleOf.some(Number.isInteger)
  if (reader.int && !wInt) return false
  const bounds = wInt ? intBounds(writer) : writer
  const rBounds = wInt && (reader.lower !== undefined || reader.upper !== undefined || reader.int)
    ? intBounds(reader)
    : reader
  if (!lowerImplies(bounds.lower, rBounds.lower)) return false
  if (!upperImplies(bounds.upper, rBounds.upper)) return false
  for (const d of reader.multipleOf) {
    if (!(writer.multipleOf.some((m) => isMultiple(m, d)) || (wInt && isMultiple(1, d)))) return false
  }
  if (reader.minLength !== undefined && (writer.minLength ?? 0) < reader.minLength) return false
  if (reader.maxLength !== undefined && (writer.maxLength === undefined || writer.maxLength > reader.maxLength)) {
    return false
  }
  return reader.named.every((r) => writer.named.some((w) => w.key === r.key))
}

const lengthOf = (s: string) => s.length

/** Does a literal pass every check of a summary? Unknown checks are not assumed to pass. */
const satisfies = (value: SchemaAST.LiteralValue, s: Summary, checks: ReadonlyArray<Check>): boolean => {
  if (Predicate.isNumber(value)) {
    if (s.int && !Number.isSafeInteger(value)) return false
    if (!lowerImplies({ value, exclusive: false }, s.lower)) return false
    if (!upperImplies({ value, exclusive: false }, s.upper)) return false
    if (!s.multipleOf.every((d) => isMultiple(value, d))) return false
  } else if (s.int || s.lower !== undefined || s.upper !== undefined || s.multipleOf.length > 0) {
    return false
  }
  if (Predicate.isString(value)) {
    if (s.minLength !== undefined && lengthOf(value) < s.minLength) return false
    if (s.maxLength !== undefined && lengthOf(value) > s.maxLength) return false
  } else if (s.minLength !== undefined || s.maxLength !== undefined) {
    return false
  }
  const filters: Array<SchemaRepresentation.Filter> = []
  flattenChecks(checks, filters)
  return filters.every((filter) => literalPasses(value, filter))
}

const literalPasses = (value: SchemaAST.LiteralValue, filter: SchemaRepresentation.Filter): boolean => {
  const id = filter.representation?.id
  const payload = filter.representation?.payload
  switch (id) {
    case effectId("isFinite"):
    case effectId("isInt"):
    case effectId("isGreaterThan"):
    case effectId("isGreaterThanOrEqualTo"):
    case effectId("isLessThan"):
    case effectId("isLessThanOrEqualTo"):
    case effectId("isBetween"):
    case effectId("isMultipleOf"):
    case effectId("isMinLength"):
    case effectId("isMaxLength"):
    case effectId("isMinCodePoints"):
    case effectId("isMaxCodePoints"):
    case effectId("isBetweenLength"):
    case effectId("isBetweenCodePoints"):
      return true // evaluated from the summary
  }
  if (!Predicate.isString(value)) return false
  switch (id) {
    case effectId("isPattern"): {
      const re = compilePattern(str(payload, "source") ?? "", str(payload, "flags") ?? "")
      return re !== undefined && re.test(value)
    }
    case effectId("isTrimmed"):
      return value === value.trim()
    case effectId("isLowercased"):
      return value === value.toLowerCase()
    case effectId("isUppercased"):
      return value === value.toUpperCase()
    case effectId("isStartingWith"):
      return value.startsWith(str(payload, "startsWith") ?? "\u0000")
    case effectId("isEndingWith"):
      return value.endsWith(str(payload, "endsWith") ?? "\u0000")
    case effectId("isIncluding"):
      return value.includes(str(payload, "includes") ?? "\u0000")
    default:
      return false
  }
}

// ---------------------------------------------------------------------------------------------
// Subsumption
// ---------------------------------------------------------------------------------------------

const samePath = (a: Path, b: Path) => a.length === b.length && a.every((s, i) => s === b[i])

interface Context {
  readonly sides: Sides
  /** Pairs (writer, reader) being compared on the current path: recursion assumes they fit. */
  readonly active: Map<Rep, Set<Rep>>
}

/**
 * The required fields a struct loses when it is replaced by a schema that accepts any value
 * (`{}` in JSON Schema): the names of `struct`'s required fields when `replacement` is "anything"
 * and `struct` is a struct; otherwise none.
 */
export const requiredFieldsDropped = (
  replacement: Rep,
  struct: Rep,
  sides: { readonly replacement: Refs; readonly struct: Refs }
): ReadonlyArray<string> => {
  if (normalize(replacement, sides.replacement).k !== "any") return []
  const node = normalize(struct, sides.struct)
  if (node.k !== "objects") return []
  return node.rep.propertySignatures.filter((p) => !p.isOptional && !Predicate.isSymbol(p.name)).map((p) =>
    String(p.name)
  )
}

const typeIssue = (path: Path, writer: Rep, reader: Rep): Issue => ({ _tag: "Type", path, writer, reader })

const literalRep = (value: SchemaAST.LiteralValue): Rep => ({ _tag: "Literal", literal: value, checks: [] })

/**
 * Where values written with `writer` may not be read with `reader`. Empty: every value the writer
 * may write is accepted by the reader.
 */
export const subsumes = (writer: Rep, reader: Rep, sides: Sides, path: Path = []): ReadonlyArray<Issue> =>
  dedupe(sub({ sides, active: new Map() }, writer, reader, path))

const dedupe = (issues: ReadonlyArray<Issue>): ReadonlyArray<Issue> => {
  const seen = new Set<string>()
  return issues.filter((issue) => {
    const key = `${issue._tag}:${JSON.stringify(issue.path)}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

const sub = (ctx: Context, writer: Rep, reader: Rep, path: Path): ReadonlyArray<Issue> => {
  const w = resolve(writer, ctx.sides.w)
  const r = resolve(reader, ctx.sides.r)
  const active = ctx.active.get(w)
  if (active?.has(r)) return []
  const set = active ?? new Set<Rep>()
  set.add(r)
  ctx.active.set(w, set)
  const issues = compare(ctx, normalize(w, ctx.sides.w), normalize(r, ctx.sides.r), path)
  set.delete(r)
  return issues
}

const compare = (ctx: Context, W: Node, R: Node, path: Path): ReadonlyArray<Issue> => {
  if (R.k === "any" || W.k === "never") return []
  if (W.k === "union") {
    const issues = W.members.flatMap((member) => {
      const found = sub(ctx, member, R.rep, path)
      // a variant of a tagged union that the reader's struct does not have is a change of the union
      const variant = normalize(member, ctx.sides.w)
      return found.length > 0 && variant.k === "objects" && R.k === "objects" && !tagMatches(ctx, variant.rep, R.rep) &&
          R.rep.propertySignatures.some((p) => normalize(p.type, ctx.sides.r).k === "literal")
        ? [typeIssue(path, member, R.rep)]
        : found
    })
    return issues.some((i) => i._tag === "Type" && samePath(i.path, path))
      ? [typeIssue(path, W.rep, R.rep), ...issues.filter((i) => !samePath(i.path, path))]
      : issues
  }
  if (R.k === "never") return [typeIssue(path, W.rep, R.rep)]
  if (R.k === "union") {
    if (R.checks.length > 0 && !implies(summarize(checksOf(W)), summarize(R.checks))) {
      return [typeIssue(path, W.rep, R.rep)]
    }
    if (W.k === "boolean" && W.checks.length === 0) {
      const booleans: Rep = { _tag: "Union", types: [literalRep(true), literalRep(false)], checks: [] }
      const issues = sub(ctx, booleans, R.rep, path)
      if (issues.length === 0) return []
    }
    const results = R.members.map((member) => sub(ctx, W.rep, member, path))
    if (results.some((issues) => issues.length === 0)) return []
    const sameKind = R.members
      .map((member, i) => ({ node: normalize(member, ctx.sides.r), i }))
      .filter(({ node }) => (W.k === "objects" || W.k === "arrays") && node.k === W.k)
    if (sameKind.length === 1) return results[sameKind[0]!.i]!
    // a tagged union: report inside the member whose literal fields (the tag) the writer matches
    const tagged = W.k === "objects"
      ? sameKind.filter(({ node }) => node.k === "objects" && tagMatches(ctx, W.rep, node.rep))
      : []
    if (tagged.length === 1) return results[tagged[0]!.i]!
    return [typeIssue(path, W.rep, R.rep)]
  }
  const mismatch = [typeIssue(path, W.rep, R.rep)]
  switch (W.k) {
    case "any":
      return mismatch
    case "literal":
      return literalIn(W.value, R, ctx.sides.r) ? [] : mismatch
    case "null":
    case "undefined":
    case "boolean":
    case "string":
    case "number":
    case "bigint":
    case "symbol":
    case "object":
      return R.k === W.k && implies(summarize(W.checks), summarize(R.checks)) ? [] : mismatch
    case "unique":
      return R.k === "unique" && R.rep.symbol === W.rep.symbol ? [] : mismatch
    case "template":
      if (R.k === "template") return sameStructure(W.rep, R.rep) ? [] : mismatch
      return R.k === "string" && R.checks.length === 0 ? [] : mismatch
    case "arrays":
      if (R.k === "object") return implies(summarize(W.rep.checks), summarize(R.checks)) ? [] : mismatch
      if (R.k !== "arrays") return mismatch
      if (!implies(summarize(W.rep.checks), summarize(R.rep.checks))) return mismatch
      return compareArrays(ctx, W.rep, R.rep, path)
    case "objects":
      if (R.k === "object") return implies(summarize(W.rep.checks), summarize(R.checks)) ? [] : mismatch
      if (R.k !== "objects") return mismatch
      if (!implies(summarize(W.rep.checks), summarize(R.rep.checks))) return mismatch
      return compareObjects(ctx, W.rep, R.rep, path)
    case "declaration": {
      if (R.k !== "declaration") return mismatch
      const wr = W.rep.representation
      const rr = R.rep.representation
      if (
        wr === undefined || rr === undefined || wr.id !== rr.id ||
        canonicalJson(wr.payload) !== canonicalJson(rr.payload)
      ) {
        return mismatch
      }
      if (W.rep.typeParameters.length !== R.rep.typeParameters.length) return mismatch
      // type parameters are compared both ways: a declaration may read and write them
      const swapped: Context = { sides: { w: ctx.sides.r, r: ctx.sides.w }, active: new Map() }
      const invariant = W.rep.typeParameters.every((wp, i) =>
        sub(ctx, wp, R.rep.typeParameters[i]!, path).length === 0 &&
        sub(swapped, R.rep.typeParameters[i]!, wp, path).length === 0
      )
      return invariant && implies(summarize(W.rep.checks), summarize(R.rep.checks)) ? [] : mismatch
    }
  }
}

/** Does the writer struct carry the literal fields (the tag) of a reader struct? */
const tagMatches = (ctx: Context, W: SchemaRepresentation.Objects, R: SchemaRepresentation.Objects): boolean => {
  const tags = R.propertySignatures.filter((p) => normalize(p.type, ctx.sides.r).k === "literal")
  return tags.length > 0 && tags.every((rp) => {
    const wp = W.propertySignatures.find((p) => p.name === rp.name)
    return wp !== undefined && sub(ctx, wp.type, rp.type, []).length === 0
  })
}

const checksOf = (node: Node): ReadonlyArray<Check> =>
  "checks" in node ? node.checks : "checks" in node.rep ? node.rep.checks : []

const literalIn = (value: SchemaAST.LiteralValue, R: Node, refs: Refs): boolean => {
  switch (R.k) {
    case "literal":
      return R.value === value
    case "string":
      return Predicate.isString(value) && satisfies(value, summarize(R.checks), R.checks)
    case "number":
      return Predicate.isNumber(value) && satisfies(value, summarize(R.checks), R.checks)
    case "boolean":
      return Predicate.isBoolean(value) && satisfies(value, summarize(R.checks), R.checks)
    case "bigint":
      return typeof value === "bigint" && R.checks.length === 0
    case "template":
      return Predicate.isString(value) && templateAccepts(R.rep, value, refs)
    default:
      return false
  }
}

/** A template literal made of literals, strings and numbers, as a regular expression. */
const templateAccepts = (rep: SchemaRepresentation.TemplateLiteral, value: string, refs: Refs): boolean => {
  const parts: Array<string> = []
  for (const part of rep.parts) {
    const node = normalize(part, refs)
    if (node.k === "literal") parts.push(String(node.value).replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    else if (node.k === "string" && node.checks.length === 0) parts.push("[\\s\\S]*?")
    else if (node.k === "number" && node.checks.length === 0) parts.push("[+-]?\\d*\\.?\\d+(?:[Ee][+-]?\\d+)?")
    else return false
  }
  return new RegExp(`^${parts.join("")}$`).test(value)
}

const sameStructure = (a: Rep, b: Rep): boolean =>
  canonicalJson(stripAnnotations(a)) === canonicalJson(stripAnnotations(b))

const stripAnnotations = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(stripAnnotations)
  if (Predicate.isObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (k !== "annotations") out[k] = stripAnnotations(v)
    }
    return out
  }
  return value
}

interface Element {
  readonly isOptional: boolean
  readonly type: Rep
}

const compareArrays = (
  ctx: Context,
  W: SchemaRepresentation.Arrays,
  R: SchemaRepresentation.Arrays,
  path: Path
): ReadonlyArray<Issue> => {
  if (W.rest.length > 1 || R.rest.length > 1) {
    return sameStructure(W, R) ? [] : [typeIssue(path, W, R)]
  }
  const issues: Array<Issue> = []
  const wRest = W.rest[0]
  const rRest = R.rest[0]
  const n = Math.max(W.elements.length, R.elements.length)
  for (let i = 0; i < n; i++) {
    const we: Element | undefined = W.elements[i] ??
      (wRest === undefined ? undefined : { isOptional: true, type: wRest })
    const re: Element | undefined = R.elements[i] ??
      (rRest === undefined ? undefined : { isOptional: true, type: rRest })
    const at = [...path, i]
    if (we === undefined) {
      if (re !== undefined && !re.isOptional) issues.push({ _tag: "Missing", path: at })
      continue
    }
    if (re === undefined) return [typeIssue(path, W, R)] // the reader refuses a longer tuple
    if (!re.isOptional && we.isOptional) issues.push({ _tag: "Optional", path: at })
    issues.push(...sub(ctx, we.type, re.type, at))
  }
  if (wRest !== undefined) {
    if (rRest === undefined) return [typeIssue(path, W, R)]
    issues.push(...sub(ctx, wRest, rRest, [...path, "[]"]))
  }
  return issues
}

/** Index signatures that admit any JSON value say nothing: readers ignore unknown fields anyway. */
const meaningfulIndexes = (rep: SchemaRepresentation.Objects, refs: Refs) =>
  rep.indexSignatures.filter((s) => normalize(s.type, refs).k !== "any")

const keyMatches = (key: string, parameter: Rep, refs: Refs): boolean => {
  const node = normalize(parameter, refs)
  switch (node.k) {
    case "any":
      return true
    case "number":
      return key.trim() !== "" && Number.isFinite(Number(key))
    case "symbol":
    case "unique":
      return false
    default:
      return literalIn(key, node, refs)
  }
}

const compareObjects = (
  ctx: Context,
  W: SchemaRepresentation.Objects,
  R: SchemaRepresentation.Objects,
  path: Path
): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []
  const wIndexes = meaningfulIndexes(W, ctx.sides.w)
  const rIndexes = meaningfulIndexes(R, ctx.sides.r)
  const wProps = new Map<string, SchemaRepresentation.PropertySignature>()
  for (const p of W.propertySignatures) if (!Predicate.isSymbol(p.name)) wProps.set(String(p.name), p)
  const rNames = new Set<string>()
  for (const rp of R.propertySignatures) {
    if (Predicate.isSymbol(rp.name)) continue
    const key = String(rp.name)
    rNames.add(key)
    const at = [...path, key]
    const wp = wProps.get(key)
    if (wp !== undefined) {
      if (!rp.isOptional && wp.isOptional) issues.push({ _tag: "Optional", path: at })
      issues.push(...sub(ctx, wp.type, rp.type, at))
      continue
    }
    const indexes = wIndexes.filter((s) => keyMatches(key, s.parameter, ctx.sides.w))
    if (indexes.length > 0) {
      if (!rp.isOptional) issues.push({ _tag: "Optional", path: at })
      for (const s of indexes) issues.push(...sub(ctx, s.type, rp.type, at))
    } else if (!rp.isOptional) {
      issues.push({ _tag: "Missing", path: at })
    }
  }
  // a field the reader does not declare is dropped, unless an index signature of the reader takes it
  for (const [key, wp] of wProps) {
    if (rNames.has(key)) continue
    for (const s of rIndexes) {
      if (keyMatches(key, s.parameter, ctx.sides.r)) issues.push(...sub(ctx, wp.type, s.type, [...path, key]))
    }
  }
  for (const ws of wIndexes) {
    for (const rs of rIndexes) issues.push(...sub(ctx, ws.type, rs.type, [...path, "*"]))
  }
  return issues
}

// ---------------------------------------------------------------------------------------------
// Descriptions
// ---------------------------------------------------------------------------------------------

const formatBound = (b: Bound, lower: boolean) =>
  `${lower ? (b.exclusive ? ">" : "≥") : b.exclusive ? "<" : "≤"} ${b.value}`

const constraintText = (checks: ReadonlyArray<Check>, kind: "number" | "length" | "other"): Array<string> => {
  const s = summarize(checks)
  const parts: Array<string> = []
  if (kind === "number") {
    if (s.lower !== undefined && !(s.int && s.lower.value <= -MAX_SAFE)) parts.push(formatBound(s.lower, true))
    if (s.upper !== undefined && !(s.int && s.upper.value >= MAX_SAFE)) parts.push(formatBound(s.upper, false))
    for (const d of s.multipleOf) parts.push(`multiple of ${d}`)
  }
  if (s.minLength !== undefined) parts.push(`length ≥ ${s.minLength}`)
  if (s.maxLength !== undefined) parts.push(`length ≤ ${s.maxLength}`)
  const seen = new Set(s.named.map((n) => n.key))
  for (const named of s.named) if (seen.delete(named.key)) parts.push(named.label)
  return parts
}

const withParts = (base: string, parts: ReadonlyArray<string>) =>
  parts.length === 0 ? base : `${base} (${parts.join(", ")})`

const propertyName = (name: PropertyKey) =>
  Predicate.isString(name) && /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(String(name))

/** A short, TypeScript-like description of a representation, for messages. */
export const describe = (rep: Rep, refs: Refs, depth = 2): string => {
  const node = normalize(rep, refs)
  switch (node.k) {
    case "any":
      return "unknown"
    case "never":
      return "never"
    case "null":
    case "undefined":
    case "symbol":
      return node.k
    case "object":
      return "object"
    case "boolean":
      return withParts("boolean", constraintText(node.checks, "other"))
    case "bigint":
      return withParts("bigint", constraintText(node.checks, "other"))
    case "number": {
      const s = summarize(node.checks)
      return withParts(s.int ? "int" : "number", constraintText(node.checks, "number"))
    }
    case "string":
      return withParts("string", constraintText(node.checks, "length"))
    case "literal":
      return typeof node.value === "bigint" ? `${node.value}n` : JSON.stringify(node.value)
    case "unique":
      return "unique symbol"
    case "template":
      return "template literal"
    case "declaration": {
      const id = node.rep.representation?.id ?? opaqueDeclarationId
      return id.startsWith("effect/schema/") ? id.slice("effect/schema/".length) : id
    }
    case "union":
      return node.members.map((m) => {
        const text = describe(m, refs, depth)
        return normalize(m, refs).k === "union" ? `(${text})` : text
      }).join(" | ")
    case "arrays": {
      const { elements, rest } = node.rep
      const parts = constraintText(node.rep.checks, "length")
      if (elements.length === 0 && rest.length === 1) {
        return withParts(`Array<${depth <= 0 ? "…" : describe(rest[0]!, refs, depth - 1)}>`, parts)
      }
      if (depth <= 0) return withParts("[…]", parts)
      const items = elements.map((e) => `${describe(e.type, refs, depth - 1)}${e.isOptional ? "?" : ""}`)
      for (const [i, r] of rest.entries()) {
        items.push(i === 0 ? `...${describe(r, refs, depth - 1)}[]` : describe(r, refs, depth - 1))
      }
      return withParts(`[${items.join(", ")}]`, parts)
    }
    case "objects": {
      const { propertySignatures } = node.rep
      if (depth <= 0) return "{…}"
      const fields = propertySignatures.slice(0, 6).map((p) =>
        `${propertyName(p.name)}${p.isOptional ? "?" : ""}: ${describe(p.type, refs, depth - 1)}`
      )
      if (propertySignatures.length > 6) fields.push("…")
      for (const s of meaningfulIndexes(node.rep, refs)) {
        fields.push(`[key: ${describe(s.parameter, refs, 0)}]: ${describe(s.type, refs, depth - 1)}`)
      }
      return fields.length === 0 ? "{}" : `{ ${fields.join(", ")} }`
    }
  }
}
