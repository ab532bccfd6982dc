/**
 * A fast path for `Schema.decodeUnknownResult`, with bail-out.
 *
 * {@link compile} walks a schema AST once and builds a plain decoder (no `Effect`, no `Exit`, no
 * issues) for a subset of schemas. At run time the decoder returns the decoded value only when it is
 * certain that the value is exactly what `Schema.decodeUnknownResult(schema)` would produce (same
 * values, same key order, same absent optional keys); on a failure, or anything it cannot vouch
 * for, it returns {@link bail} and the caller runs the real decoder, which gives the real success or
 * the detailed failure. So failures never need to be reproduced here: only successes must be
 * identical.
 *
 * The decoder is generated JavaScript (`new Function`, like effect's own `SchemaJITCompiler`): every
 * key, check and getter is a constant of its own call site, so V8 keeps the property accesses
 * monomorphic and inlines the checks. Where code cannot be generated (e.g. `new Function` forbidden
 * by a content security policy, a `__proto__` or symbol key), the same semantics are built from
 * closures (`Compiler`), slower but still without `Effect`. Both are tested against effect.
 *
 * It mirrors effect's interpreter (`effect/internal/schema/interpreter.ts` and the `getParser` of
 * each AST node in `SchemaAST.ts`) under the default parse options (`errors: "first"`, excess
 * properties ignored, sequential):
 *
 * - **Primitives**: `String`, `Number`, `Boolean`, `BigInt`, `Symbol`, `Null`, `Undefined`, `Void`,
 *   `Never`, `Unknown`, `Any`, `ObjectKeyword`, `Literal`, `UniqueSymbol`, `Enum`.
 * - **Checks** (`ast.checks`: `Filter` and `FilterGroup`, e.g. `Schema.Int`, `Schema.Finite`,
 *   `isGreaterThan`, `isMaxLength`, `makeFilter`): each filter's own `run` is called on the decoded
 *   value of its node, in order; any issue is a failure. Effect's common checks are written as code
 *   instead (`inlineCheck`), when their expression agrees with their `run` on probe values.
 * - **Objects**: property signatures (required, `optionalKey`, `optional`), undeclared keys dropped;
 *   or, with one `Record(String, …)` index signature (`Schema.StructWithRest`), undeclared keys kept
 *   after the declared ones, in `Object.keys` order (effect's order). The index value decoder runs on
 *   every own key, declared ones included, as effect's does.
 * - **Encodings** (`ast.encoding`, e.g. `decodeTo`): each link is decoded from its `to` side, through
 *   the decode getter, in effect's order. Getters: `Passthrough`, `Transform`, `TransformOptional`.
 *   The `SchemaGetter.withDefault` getter of `withDecodingDefaultKey` / `withDecodingDefault` is
 *   resolved at compile time when its default is an already completed success
 *   (`Effect.succeed(x)`): an absent key (or `undefined`) becomes `x`. Other `TransformEffect` and
 *   `TransformOptionalEffect` getters are called as effect calls them, and their result is used only
 *   when it is an already completed success (an `Exit`); otherwise the decoder bails.
 * - **Unions** (`anyOf` and `oneOf`): effect tries its candidate members in order; its candidate
 *   index only leaves out members that would fail anyway, so the first member that succeeds wins.
 *   When a member before it bails, the whole union bails.
 *
 * Unsupported (`compile` returns `undefined`): `Declaration` (classes, `Option`, dates…), `Suspend`,
 * `Arrays` (tuples and arrays), `TemplateLiteral`, middleware encodings, `encodingChecks`, index
 * signatures other than one `Record(String, …)`. Non-default parse options are not modelled: the
 * decoder is only for `Schema.decodeUnknownResult(schema)` called without options.
 *
 * A getter, check or transformation that throws makes the decoder bail (effect turns it into a
 * defect, which the caller's real decoder reports). Checks and getters are assumed deterministic
 * (as effect's JIT assumes too): a record that bails runs them again in effect's decoder.
 *
 * @internal
 */
import { Effect, Exit, Option, SchemaAST, SchemaGetter } from "effect"

/**
 * What a fast decoder returns when it cannot vouch for its answer: run the real decoder.
 *
 * @internal
 */
export const bail: unique symbol = Symbol.for("@sluice/core/FastDecode/bail")

/**
 * A compiled fast decoder: the decoded value, or {@link bail}.
 *
 * @internal
 */
export type FastDecoder = (input: unknown) => unknown

/** An absent key (effect's `missing`). */
const missing: unique symbol = Symbol("@sluice/core/FastDecode/missing")
/** A certain failure: effect fails too (a type mismatch, a failed check). */
const fail: unique symbol = Symbol("@sluice/core/FastDecode/fail")

/**
 * Returns a value, `missing` (only for a `missing` input, or a getter that removes the key), `fail`
 * or `bail`.
 */
type Decoder = (input: unknown) => unknown

/** The key of the one index signature supported: `Schema.String`, without checks or encoding. */
const isPlainStringKey = (parameter: SchemaAST.AST): boolean =>
  parameter === SchemaAST.string ||
  (parameter._tag === "String" && parameter.checks === undefined && parameter.encoding === undefined)

/** The parse options effect uses when none are given (`SchemaAST.defaultParseOptions`). */
const parseOptions: SchemaAST.ParseOptions = {}

/**
 * Compiles a fast decoder for `ast`, or returns `undefined` when the schema is outside the
 * supported subset (see the module documentation).
 *
 * @internal
 */
export const compile = (
  ast: SchemaAST.AST,
  options?: { readonly generate?: boolean | undefined }
): FastDecoder | undefined => {
  let decoder: Decoder | undefined
  try {
    decoder = new Compiler().node(ast)
  } catch {
    return undefined
  }
  if (decoder === undefined) return undefined
  if (options?.generate !== false) {
    const generated = generate(ast)
    if (generated !== undefined) return generated
  }
  const run = decoder
  return (input) => {
    try {
      const out = run(input)
      return out === fail || out === missing ? bail : out
    } catch {
      return bail
    }
  }
}

/**
 * The decoder as generated JavaScript (like effect's own `SchemaJITCompiler`), for the same subset
 * and with the same semantics as the closures of {@link Compiler}: every key, check and getter is a
 * constant of its own call site, so V8 keeps property accesses monomorphic and inlines the checks
 * (about 1.5 times as fast as the closures on the orders feed). Absent keys are resolved at compile time (a
 * missing value stays missing through every node, except through a `withDefault` getter, which
 * makes it the default). A getter that removes a present value makes the decoder bail.
 *
 * `undefined` when code cannot be generated (`new Function` unavailable, e.g. under a content
 * security policy; a symbol or `__proto__` key; too much code): the closures are used instead.
 */
const generate = (ast: SchemaAST.AST): FastDecoder | undefined => {
  try {
    const generator = new Generator()
    const statements: Array<string> = []
    const out = generator.present(ast, "i", statements, "return B")
    const source = `"use strict";${generator.declarations.join(";")};return function(i){try{${
      statements.join(";")
    };return ${out}}catch(e){return B}}`
    if (source.length > 200_000) return undefined
    // oxlint-disable-next-line no-new-func
    const make = new Function("C", "B", "P", source)
    return make(generator.constants, bail, defineProperty) as FastDecoder
  } catch {
    return undefined
  }
}

class Unsupported extends Error {}

/**
 * A check known by its `representation` annotation: the expression that is true when it passes, and
 * the same as a function, to compare with the filter's own `run` at compile time.
 */
interface KnownCheck {
  readonly code: (value: string) => string
  readonly test: (value: any) => boolean
  readonly probes: ReadonlyArray<unknown>
}

/** A number as a JavaScript literal that reads back as the same number (`-0` included). */
const numberLiteral = (n: number): string => Object.is(n, -0) ? "(-0)" : `(${String(n)})`

const numberProbes = (bound: number): ReadonlyArray<number> => [
  NaN,
  -Infinity,
  Infinity,
  -0,
  0,
  0.5,
  1,
  1.5,
  -1,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  1e300,
  -1e300,
  bound,
  bound - 1,
  bound + 1,
  bound - 0.5,
  bound + 0.5
]

const lengthProbes = (bound: number): ReadonlyArray<string> =>
  [0, 1, 2, bound - 1, bound, bound + 1].filter((n) => n >= 0 && n < 100_000).map((n) => "x".repeat(n))

const comparison = (operator: ">" | ">=" | "<" | "<=", bound: unknown): KnownCheck | undefined => {
  if (typeof bound !== "number" || !Number.isFinite(bound)) return undefined
  const literal = numberLiteral(bound)
  const test = operator === ">"
    ? (v: number) => v > bound
    : operator === ">="
    ? (v: number) => v >= bound
    : operator === "<"
    ? (v: number) => v < bound
    : (v: number) => v <= bound
  return { code: (v) => `${v}${operator}${literal}`, test, probes: numberProbes(bound) }
}

const lengthBound = (operator: ">=" | "<=", bound: unknown): KnownCheck | undefined =>
  typeof bound === "number" && Number.isSafeInteger(bound) && bound >= 0
    ? {
      code: (v) => `${v}.length${operator}${bound}`,
      test: operator === ">=" ? (v: string) => v.length >= bound : (v: string) => v.length <= bound,
      probes: lengthProbes(bound)
    }
    : undefined

/** The checks of effect that {@link inlineCheck} writes as code, by their representation's id. */
const knownChecks: Record<string, (payload: any) => KnownCheck | undefined> = {
  "effect/schema/isInt": () => ({
    code: (v) => `Number.isSafeInteger(${v})`,
    test: Number.isSafeInteger,
    probes: numberProbes(0)
  }),
  "effect/schema/isFinite": () => ({
    code: (v) => `Number.isFinite(${v})`,
    test: Number.isFinite,
    probes: numberProbes(0)
  }),
  "effect/schema/isGreaterThan": (payload) => comparison(">", payload?.exclusiveMinimum),
  "effect/schema/isGreaterThanOrEqualTo": (payload) => comparison(">=", payload?.minimum),
  "effect/schema/isLessThan": (payload) => comparison("<", payload?.exclusiveMaximum),
  "effect/schema/isLessThanOrEqualTo": (payload) => comparison("<=", payload?.maximum),
  "effect/schema/isMinLength": (payload) => lengthBound(">=", payload?.minLength),
  "effect/schema/isMaxLength": (payload) => lengthBound("<=", payload?.maxLength)
}

/**
 * Code for one of effect's common checks (`isInt`, `isFinite`, the number comparisons, `isMinLength`,
 * `isMaxLength`), recognised by its `representation` annotation, instead of a call to its `run`: each
 * of those is its own closure calling the filter's predicate through one shared wrapper, a call site
 * V8 cannot inline. The annotation alone is not trusted: the code is used only when the predicate
 * agrees with the filter's own `run` on probe values around its bound; otherwise (a filter that
 * borrows the annotation, a payload in another form) `run` is called as before.
 */
const inlineCheck = (check: SchemaAST.Filter<unknown>): ((value: string) => string) | undefined => {
  const representation = (check.annotations as { readonly representation?: unknown } | undefined)?.representation
  if (typeof representation !== "object" || representation === null) return undefined
  const { id, payload } = representation as { readonly id?: unknown; readonly payload?: unknown }
  const make = typeof id === "string" && Object.hasOwn(knownChecks, id) ? knownChecks[id] : undefined
  const known = make?.(payload)
  if (known === undefined) return undefined
  for (const probe of known.probes) {
    let passes: boolean
    try {
      passes = check.run(probe, SchemaAST.string, parseOptions) === undefined
    } catch {
      return undefined
    }
    if (passes !== known.test(probe)) return undefined
  }
  return known.code
}

/** The value of an absent key, known at compile time: it stays absent (effect's `missing`). */
const absent = "/* absent */"

class Generator {
  readonly constants: Array<unknown> = []
  readonly declarations: Array<string> = []
  private readonly constantNames = new Map<unknown, string>()
  private next = 0

  private variable(): string {
    // Members are generated where they are used, so code can grow with the sharing of a schema.
    if (this.next > 20_000) throw new Unsupported()
    return `v${this.next++}`
  }

  private label(): string {
    return `l${this.next++}`
  }

  /** A constant of the generated code, bound once. */
  private constant(value: unknown): string {
    // A `Map` does not tell `0` from `-0`.
    const existing = typeof value === "number" ? undefined : this.constantNames.get(value)
    if (existing !== undefined) return existing
    const name = `c${this.constants.length}`
    this.declarations.push(`const ${name}=C[${this.constants.length}]`)
    this.constants.push(value)
    this.constantNames.set(value, name)
    return name
  }

  /**
   * Appends the statements decoding the present value `input` (an expression) and returns an
   * expression of the decoded value. `onFail` is the statement run on a certain failure.
   */
  present(ast: SchemaAST.AST, input: string, statements: Array<string>, onFail: string): string {
    const links = ast.encoding
    if (links === undefined) return this.local(ast, input, statements, onFail)
    let value = this.present(links[links.length - 1]!.to, input, statements, onFail)
    for (let i = links.length - 1; i >= 0; i--) {
      value = this.getterPresent(links[i]!.transformation, value, statements, onFail)
      if (i !== 0) value = this.present(links[i - 1]!.to, value, statements, onFail)
    }
    return this.local(ast, value, statements, onFail)
  }

  /** Like {@link present}, for an absent key: returns {@link absent} when it stays absent. */
  missing(ast: SchemaAST.AST, statements: Array<string>, onFail: string): string {
    const links = ast.encoding
    if (links === undefined) return absent
    let value = this.missing(links[links.length - 1]!.to, statements, onFail)
    for (let i = links.length - 1; i >= 0; i--) {
      const transformation = links[i]!.transformation
      value = value === absent
        ? this.getterMissing(transformation, statements)
        : this.getterPresent(transformation, value, statements, onFail)
      if (i !== 0) {
        const to = links[i - 1]!.to
        value = value === absent ? this.missing(to, statements, onFail) : this.present(to, value, statements, onFail)
      }
    }
    return value === absent ? absent : this.local(ast, value, statements, onFail)
  }

  private assign(statements: Array<string>, expression: string): string {
    const v = this.variable()
    statements.push(`const ${v}=${expression}`)
    return v
  }

  private getterPresent(
    transformation: SchemaAST.Link["transformation"],
    input: string,
    statements: Array<string>,
    onFail: string
  ): string {
    if (transformation._tag !== "Transformation") throw new Unsupported()
    const getter = transformation.decode
    switch (getter._tag) {
      case "Passthrough":
        return input
      case "Transform":
        return this.assign(statements, `${this.constant(getter.transform)}(${input})`)
      case "TransformOptionalEffect": {
        const fallback = defaultOf(getter.transform)
        if (fallback !== undefined) {
          return this.assign(statements, `${input}===void 0?${this.constant(fallback.value)}:${input}`)
        }
        break
      }
    }
    // The other getters, through the closures' getter: a value, or missing, `fail` or `bail`.
    const decoder = new Compiler().getter(transformation)
    if (decoder === undefined) throw new Unsupported()
    const v = this.assign(statements, `${this.constant(decoder)}(${input})`)
    statements.push(
      `if(${v}===${this.constant(fail)})${onFail}`,
      `if(${v}===B||${v}===${this.constant(missing)})return B`
    )
    return v
  }

  private getterMissing(transformation: SchemaAST.Link["transformation"], statements: Array<string>): string {
    if (transformation._tag !== "Transformation") throw new Unsupported()
    const getter = transformation.decode
    switch (getter._tag) {
      case "Passthrough":
      case "Transform":
        return absent
      case "TransformOptionalEffect": {
        const fallback = defaultOf(getter.transform)
        if (fallback !== undefined) return this.constant(fallback.value)
        break
      }
    }
    if (new Compiler().getter(transformation) === undefined) throw new Unsupported()
    // Rare (e.g. a default computed per decoding): not worth generating.
    statements.push("return B")
    return absent
  }

  /** A node's own parser and checks, on a present value. */
  private local(ast: SchemaAST.AST, input: string, statements: Array<string>, onFail: string): string {
    if ((ast as { readonly encodingChecks?: SchemaAST.Checks }).encodingChecks !== undefined) throw new Unsupported()
    const value = this.base(ast, input, statements, onFail)
    if (ast.checks === undefined) return value
    const self = this.constant(ast)
    const options = this.constant(parseOptions)
    const run = (checks: ReadonlyArray<SchemaAST.Check<unknown>>): void => {
      for (const check of checks) {
        if (check._tag === "FilterGroup") run(check.checks)
        else {
          const inline = inlineCheck(check)
          statements.push(
            inline !== undefined
              ? `if(!(${inline(value)}))${onFail}`
              : `if(${this.constant(check)}.run(${value},${self},${options})!==void 0)${onFail}`
          )
        }
      }
    }
    run(ast.checks)
    return value
  }

  private base(ast: SchemaAST.AST, input: string, statements: Array<string>, onFail: string): string {
    const v = this.assign(statements, input)
    const test = (condition: string) => statements.push(`if(${condition})${onFail}`)
    switch (ast._tag) {
      case "String":
      case "Number":
      case "Boolean":
      case "BigInt":
      case "Symbol":
        test(`typeof ${v}!=="${ast._tag.toLowerCase()}"`)
        return v
      case "Null":
        test(`${v}!==null`)
        return v
      case "Undefined":
        test(`${v}!==void 0`)
        return v
      case "Void":
        return "void 0"
      case "Never":
        statements.push(onFail)
        return v
      case "Unknown":
      case "Any":
        return v
      case "ObjectKeyword":
        test(`(typeof ${v}!=="object"||${v}===null)&&typeof ${v}!=="function"`)
        return v
      case "Literal":
        test(`${v}!==${this.constant(ast.literal)}`)
        return v
      case "UniqueSymbol":
        test(`${v}!==${this.constant(ast.symbol)}`)
        return v
      case "Enum":
        test(`!${this.constant(new Set<unknown>(ast.enums.map(([, value]) => value)))}.has(${v})`)
        return v
      case "Objects":
        return this.objects(ast, v, statements, onFail)
      case "Union":
        return this.union(ast, v, statements, onFail)
      default:
        throw new Unsupported()
    }
  }

  private objects(ast: SchemaAST.Objects, input: string, statements: Array<string>, onFail: string): string {
    const properties = ast.propertySignatures
    if (properties.length === 0 && ast.indexSignatures.length === 0) {
      statements.push(`if(${input}===null||${input}===void 0)${onFail}`)
      return input
    }
    if (ast.indexSignatures.length > 1) throw new Unsupported()
    statements.push(`if(typeof ${input}!=="object"||${input}===null||Array.isArray(${input}))${onFail}`)
    const out = this.variable()
    statements.push(`const ${out}={}`)
    for (const property of properties) {
      const name = property.name
      if (typeof name !== "string" || name === "__proto__") throw new Unsupported()
      const key = JSON.stringify(name)
      const v = this.variable()
      statements.push(`const ${v}=${input}[${key}]`)
      const present: Array<string> = []
      const decoded = this.present(property.type, v, present, onFail)
      present.push(`${out}[${key}]=${decoded}`)
      const missing: Array<string> = []
      const fallback = this.missing(property.type, missing, onFail)
      if (fallback === absent) {
        if (!SchemaAST.isOptional(property.type)) missing.push(onFail)
      } else {
        missing.push(`${out}[${key}]=${fallback}`)
      }
      statements.push(`if(${v}!==void 0||${key} in ${input}){${present.join(";")}}else{${missing.join(";")}}`)
    }
    const signature = ast.indexSignatures[0]
    if (signature !== undefined) {
      if (!isPlainStringKey(signature.parameter)) throw new Unsupported()
      const keys = this.variable()
      const j = this.variable()
      const k = this.variable()
      const body: Array<string> = [`const ${k}=${keys}[${j}]`]
      /** `case "a":case "b":…` over the declared keys, then `continue`: a key to skip. */
      const declared = `${properties.map((p) => `case ${JSON.stringify(p.name)}:`).join("")}continue`
      const skipDeclared = properties.length === 0 ? undefined : `switch(${k}){${declared}}`
      // effect decodes every key with the index signature's type, declared ones too (and fails when
      // one fails), then drops the declared ones; `Unknown` cannot fail, so skip them first.
      const lenient = isLenient(signature.type)
      if (lenient && skipDeclared !== undefined) body.push(skipDeclared)
      const decoded = this.present(signature.type, `${input}[${k}]`, body, onFail)
      if (!lenient && skipDeclared !== undefined) body.push(skipDeclared)
      body.push(`if(${k}==="__proto__")P(${out},${k},${decoded});else ${out}[${k}]=${decoded}`)
      const loop = `const ${keys}=Object.keys(${input});for(let ${j}=0;${j}<${keys}.length;${j}++){${body.join(";")}}`
      if (lenient && skipDeclared !== undefined) {
        // Most records have only declared keys, and then the loop keeps nothing: find that out
        // first without allocating (`for…in` walks the enumeration cache, `Object.keys` copies
        // it). Every own enumerable string key is among the `for…in` keys, so when they are all
        // declared there is nothing to keep; any other key (inherited ones too) runs the loop.
        const label = this.label()
        const f = this.variable()
        statements.push(
          `${label}:{for(const ${f} in ${input}){switch(${f}){${declared}}${loop};break ${label}}}`
        )
      } else {
        statements.push(loop)
      }
    }
    return out
  }

  private union(ast: SchemaAST.Union, input: string, statements: Array<string>, onFail: string): string {
    const out = this.variable()
    if (ast.options?.mode === "oneOf") {
      const none = this.constant(fail)
      statements.push(`let ${out}=${none}`)
      for (const type of ast.types) {
        const label = this.label()
        const member: Array<string> = []
        const decoded = this.present(type, input, member, `break ${label}`)
        member.push(`if(${out}!==${none})return B`, `${out}=${decoded}`)
        statements.push(`${label}:{${member.join(";")}}`)
      }
      statements.push(`if(${out}===${none})${onFail}`)
      return out
    }
    const done = this.label()
    statements.push(`let ${out}`)
    const members: Array<string> = []
    for (const type of ast.types) {
      const label = this.label()
      const member: Array<string> = []
      const decoded = this.present(type, input, member, `break ${label}`)
      member.push(`${out}=${decoded}`, `break ${done}`)
      members.push(`${label}:{${member.join(";")}}`)
    }
    statements.push(`${done}:{${members.join("")}${onFail}}`)
    return out
  }
}

/**
 * The decoder as closures: the reference semantics of the fast path (it also decides what is
 * supported: `undefined` otherwise), used as it is where code cannot be generated. Each closure
 * returns a value, `missing`, `fail` (a certain failure) or `bail`.
 */
class Compiler {
  private readonly cache = new Map<SchemaAST.AST, Decoder | undefined>()
  private depth = 0

  node(ast: SchemaAST.AST): Decoder | undefined {
    if (this.cache.has(ast)) return this.cache.get(ast)
    if (++this.depth > 200) throw new Error("schema too deep")
    try {
      const decoder = ast.encoding === undefined ? this.local(ast) : this.encoded(ast, ast.encoding)
      this.cache.set(ast, decoder)
      return decoder
    } finally {
      this.depth--
    }
  }

  /** A node with an encoding: decode the last link's `to`, then each getter towards the type side. */
  private encoded(ast: SchemaAST.AST, links: SchemaAST.Encoding): Decoder | undefined {
    const local = this.local(ast)
    if (local === undefined) return undefined
    const n = links.length
    const froms: Array<Decoder> = []
    const getters: Array<Decoder> = []
    for (let i = 0; i < n; i++) {
      const link = links[i]!
      const from = this.node(link.to)
      const getter = this.getter(link.transformation)
      if (from === undefined || getter === undefined) return undefined
      froms.push(from)
      getters.push(getter)
    }
    if (n === 1) {
      const from = froms[0]!
      const getter = getters[0]!
      return (input) => {
        let v = from(input)
        if (v === fail || v === bail) return v
        v = getter(v)
        if (v === fail || v === bail) return v
        return local(v)
      }
    }
    return (input) => {
      let v = froms[n - 1]!(input)
      for (let i = n - 1; i >= 0; i--) {
        if (v === fail || v === bail) return v
        v = getters[i]!(v)
        if (i !== 0) {
          if (v === fail || v === bail) return v
          v = froms[i - 1]!(v)
        }
      }
      if (v === fail || v === bail) return v
      return local(v)
    }
  }

  /** The decode side of a link's transformation, as effect's interpreter applies it. */
  getter(transformation: SchemaAST.Link["transformation"]): Decoder | undefined {
    if (transformation._tag !== "Transformation") return undefined
    const getter = transformation.decode
    switch (getter._tag) {
      case "Passthrough":
        return (v) => v
      case "Transform": {
        const f = getter.transform
        return (v) => v === missing ? missing : f(v)
      }
      case "TransformOptional": {
        const f = getter.transform
        return (v) => {
          const o = f(v === missing ? Option.none() : Option.some(v))
          return Option.isNone(o) ? missing : o.value
        }
      }
      case "TransformEffect": {
        const f = getter.transform
        return (v) => {
          if (v === missing) return missing
          const exit: unknown = f(v, parseOptions)
          if (!Exit.isExit(exit)) return bail
          return Exit.isSuccess(exit) ? exit.value : fail
        }
      }
      case "TransformOptionalEffect": {
        const f = getter.transform
        const fallback = defaultOf(f)
        if (fallback !== undefined) {
          const value = fallback.value
          return (v) => v === missing || v === undefined ? value : v
        }
        return (v) => {
          const exit: unknown = f(v === missing ? Option.none() : Option.some(v), parseOptions)
          if (!Exit.isExit(exit)) return bail
          if (Exit.isFailure(exit)) return fail
          const o = exit.value as Option.Option<unknown>
          return Option.isNone(o) ? missing : o.value
        }
      }
      default:
        return undefined
    }
  }

  /** A node's own parser and checks (effect's `parseChecks`), without its encoding. */
  private local(ast: SchemaAST.AST): Decoder | undefined {
    if ((ast as { readonly encodingChecks?: SchemaAST.Checks }).encodingChecks !== undefined) return undefined
    const base = this.base(ast)
    if (base === undefined || ast.checks === undefined) return base
    const filters: Array<SchemaAST.Filter<unknown>> = []
    const flatten = (checks: ReadonlyArray<SchemaAST.Check<unknown>>): void => {
      for (const check of checks) {
        if (check._tag === "FilterGroup") flatten(check.checks)
        else filters.push(check)
      }
    }
    flatten(ast.checks)
    // With `errors: "first"`, the first issue (of a group too) fails the value.
    if (filters.length === 1) {
      const run = filters[0]!.run
      return (input) => {
        const v = base(input)
        if (v === missing || v === fail || v === bail) return v
        return run(v, ast, parseOptions) === undefined ? v : fail
      }
    }
    const n = filters.length
    return (input) => {
      const v = base(input)
      if (v === missing || v === fail || v === bail) return v
      for (let i = 0; i < n; i++) {
        if (filters[i]!.run(v, ast, parseOptions) !== undefined) return fail
      }
      return v
    }
  }

  private base(ast: SchemaAST.AST): Decoder | undefined {
    switch (ast._tag) {
      case "String":
        return (v) => v === missing ? missing : typeof v === "string" ? v : fail
      case "Number":
        return (v) => v === missing ? missing : typeof v === "number" ? v : fail
      case "Boolean":
        return (v) => v === missing ? missing : typeof v === "boolean" ? v : fail
      case "BigInt":
        return (v) => v === missing ? missing : typeof v === "bigint" ? v : fail
      case "Symbol":
        return (v) => v === missing ? missing : typeof v === "symbol" ? v : fail
      case "Null":
        return (v) => v === missing ? missing : v === null ? v : fail
      case "Undefined":
        return (v) => v === missing ? missing : v === undefined ? v : fail
      case "Void":
        return (v) => v === missing ? missing : undefined
      case "Never":
        return (v) => v === missing ? missing : fail
      case "Unknown":
      case "Any":
        return identity
      case "ObjectKeyword":
        return (v) =>
          v === missing ? missing : (typeof v === "object" && v !== null) || typeof v === "function" ? v : fail
      case "Literal": {
        // effect returns the input when it is `===` the literal (so `-0` for the literal `0`).
        const literal = ast.literal
        return (v) => v === missing ? missing : v === literal ? v : fail
      }
      case "UniqueSymbol": {
        const symbol = ast.symbol
        return (v) => v === missing ? missing : v === symbol ? v : fail
      }
      case "Enum": {
        const values = new Set<unknown>(ast.enums.map(([, value]) => value))
        return (v) => v === missing ? missing : values.has(v) ? v : fail
      }
      case "Objects":
        return this.objects(ast)
      case "Union":
        return this.union(ast)
      default:
        return undefined
    }
  }

  private objects(ast: SchemaAST.Objects): Decoder | undefined {
    const properties = ast.propertySignatures
    const n = properties.length
    if (n === 0 && ast.indexSignatures.length === 0) {
      return (v) => v === missing ? missing : v !== null && v !== undefined ? v : fail
    }
    if (ast.indexSignatures.length > 1) return undefined
    const names: Array<PropertyKey> = []
    const decoders: Array<Decoder> = []
    const optional: Array<boolean> = []
    let protoKey = false
    for (const property of properties) {
      const decoder = this.node(property.type)
      if (decoder === undefined) return undefined
      if (property.name === "__proto__") protoKey = true
      names.push(property.name)
      decoders.push(decoder)
      optional.push(SchemaAST.isOptional(property.type))
    }
    let rest: Decoder | undefined
    const signature = ast.indexSignatures[0]
    if (signature !== undefined) {
      if (!isPlainStringKey(signature.parameter)) return undefined
      rest = this.node(signature.type)
      if (rest === undefined) return undefined
    }
    const declared = new Set<PropertyKey>(names.map((name) => typeof name === "number" ? String(name) : name))
    const restDecoder = rest
    return (input) => {
      if (input === missing) return missing
      if (typeof input !== "object" || input === null || Array.isArray(input)) return fail
      const record = input as Record<PropertyKey, unknown>
      const out: Record<PropertyKey, unknown> = {}
      for (let i = 0; i < n; i++) {
        const name = names[i]!
        const has = protoKey && name === "__proto__" ? Object.hasOwn(record, name) : name in record
        const r = decoders[i]!(has ? record[name] : missing)
        if (r === fail || r === bail) return r
        if (r === missing) {
          if (!optional[i]) return fail
          continue
        }
        if (protoKey && name === "__proto__") defineProperty(out, name, r)
        else out[name] = r
      }
      if (restDecoder !== undefined) {
        const keys = Object.keys(record)
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i]!
          const r = restDecoder(record[key])
          if (r === fail || r === bail) return r
          if (r === missing || declared.has(key)) continue
          if (key === "__proto__") defineProperty(out, key, r)
          else out[key] = r
        }
      }
      return out
    }
  }

  private union(ast: SchemaAST.Union): Decoder | undefined {
    const members: Array<Decoder> = []
    for (const type of ast.types) {
      const decoder = this.node(type)
      if (decoder === undefined) return undefined
      members.push(decoder)
    }
    const n = members.length
    if (ast.options?.mode === "oneOf") {
      return (input) => {
        if (input === missing) return missing
        let out: unknown = fail
        for (let i = 0; i < n; i++) {
          const r = members[i]!(input)
          if (r === fail) continue
          if (r === bail || out !== fail) return bail
          out = r
        }
        return out
      }
    }
    if (n === 2) {
      const first = members[0]!
      const second = members[1]!
      return (input) => {
        if (input === missing) return missing
        const r = first(input)
        return r === fail ? second(input) : r
      }
    }
    return (input) => {
      if (input === missing) return missing
      for (let i = 0; i < n; i++) {
        const r = members[i]!(input)
        if (r !== fail) return r
      }
      return fail
    }
  }
}

type OptionalEffectTransform = SchemaGetter.TransformOptionalEffect<unknown, unknown, unknown>["transform"]

/** The source of the closure `SchemaGetter.withDefault` makes (the same for every default). */
let withDefaultSource: string | undefined

/**
 * The default of a `SchemaGetter.withDefault` getter (as `withDecodingDefaultKey` and
 * `withDecodingDefault` make) whose default effect has already succeeded, e.g. `Effect.succeed(x)`:
 * such a getter maps an absent or `undefined` input to the default and keeps any other value, so
 * the fast path can apply it without an `Effect` per record. The getter is recognised by its source
 * and probed once; anything else returns `undefined` (the getter is then called per record).
 */
const defaultOf = (f: OptionalEffectTransform): { readonly value: unknown } | undefined => {
  withDefaultSource ??= String(
    (SchemaGetter.withDefault(Effect.succeed(0)) as SchemaGetter.TransformOptionalEffect<number, unknown, never>)
      .transform
  )
  if (String(f) !== withDefaultSource) return undefined
  const someOf = (exit: unknown): { readonly value: unknown } | undefined => {
    if (!Exit.isExit(exit) || !Exit.isSuccess(exit)) return undefined
    const option: unknown = exit.value
    return Option.isOption(option) && Option.isSome(option) ? { value: option.value } : undefined
  }
  const absent = someOf(f(Option.none(), parseOptions))
  const undefinedInput = someOf(f(Option.some(undefined), parseOptions))
  const probe = {}
  const present = someOf(f(Option.some(probe), parseOptions))
  if (
    absent === undefined || undefinedInput === undefined || present === undefined || present.value !== probe ||
    !Object.is(absent.value, undefinedInput.value)
  ) return undefined
  return { value: absent.value }
}

const identity: Decoder = (v) => v

/** `Unknown` or `Any`, without checks or encoding: it accepts any present value as it is. */
const isLenient = (ast: SchemaAST.AST): boolean =>
  (ast._tag === "Unknown" || ast._tag === "Any") && ast.checks === undefined && ast.encoding === undefined &&
  (ast as { readonly encodingChecks?: SchemaAST.Checks }).encodingChecks === undefined

const defineProperty = (out: object, key: PropertyKey, value: unknown): void => {
  Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true })
}
