/**
 * The JSON Schema vocabulary Sluice understands, checked before a document is imported: effect's
 * importer assumes a valid document and quietly reads an unknown `type` (`"strnig"`) or a misspelt
 * keyword (`"requried"`) as "no constraint", which would register a schema that accepts anything.
 *
 * `firstProblem` walks a document and returns the first keyword or value it does not understand,
 * with its path (`properties.amount.type`), or `undefined` when the whole document is understood.
 *
 * @internal
 */
import { Predicate, Result } from "effect"

/** A problem in a document: where (`properties.amount.type`, `""` for the root) and what. */
export interface Problem {
  readonly path: string
  readonly message: string
}

type Segment = string | number
type Value = unknown

const types = new Set(["null", "boolean", "object", "array", "number", "integer", "string"])

/** Keywords whose value is a schema. */
const schemaKeywords = new Set(["items", "additionalProperties", "propertyNames"])
/** Keywords whose value is an array of schemas. */
const schemaArrayKeywords = new Set(["allOf", "anyOf", "oneOf", "prefixItems"])
/** Keywords whose value maps names to schemas. */
const schemaMapKeywords = new Set(["properties", "patternProperties", "$defs", "definitions"])
const nonNegativeIntegerKeywords = new Set([
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties"
])
const numberKeywords = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])
const stringKeywords = new Set([
  "$schema",
  "$id",
  "$ref",
  "$comment",
  "title",
  "description",
  "format",
  "contentEncoding",
  "contentMediaType"
])
const booleanKeywords = new Set(["uniqueItems", "readOnly", "writeOnly", "deprecated"])
/** Keywords that constrain nothing a record carries. */
const anyValueKeywords = new Set(["default", "examples"])
/** Keywords with no equivalent in Sluice's schemas: importing them would lose the constraint. */
const unsupported = new Set([
  "not",
  "if",
  "then",
  "else",
  "contains",
  "minContains",
  "maxContains",
  "dependentRequired",
  "dependentSchemas",
  "dependencies",
  "unevaluatedItems",
  "unevaluatedProperties",
  "$dynamicRef",
  "$dynamicAnchor",
  "$anchor",
  "$recursiveRef",
  "$recursiveAnchor",
  "$vocabulary"
])
/** Draft-07 spellings, understood when the document declares draft-07. */
const draft07Keywords = new Set(["additionalItems"])

const render = (path: ReadonlyArray<Segment>): string =>
  path.reduce<string>(
    (out, segment) => Predicate.isNumber(segment) ? `${out}[${segment}]` : out === "" ? segment : `${out}.${segment}`,
    ""
  )

const isEmptySchema = (u: Value): boolean => Predicate.isObject(u) && !Array.isArray(u) && Object.keys(u).length === 0

/** `{ "not": {} }`: no value at all, the same as the schema `false`. */
const isEmptyNot = (u: Value): boolean =>
  Predicate.isObject(u) && !Array.isArray(u) && Object.keys(u).length === 1 && isEmptySchema((u as { not?: Value }).not)

const isNonNegativeInteger = (u: Value): boolean => Predicate.isNumber(u) && Number.isInteger(u) && u >= 0

/**
 * The first part of a JSON Schema document that Sluice does not understand, or `undefined`.
 *
 * @internal
 */
export const firstProblem = (document: Value, options: { readonly draft07: boolean }): Problem | undefined => {
  const problem = (path: ReadonlyArray<Segment>, message: string): Problem => ({ path: render(path), message })

  const schema = (value: Value, path: ReadonlyArray<Segment>): Problem | undefined => {
    if (Predicate.isBoolean(value)) return undefined
    if (!Predicate.isObject(value) || Array.isArray(value)) {
      return problem(path, `a schema must be an object or a boolean, got ${JSON.stringify(value)}`)
    }
    for (const [keyword, v] of Object.entries(value as Record<string, Value>)) {
      const found = keywordProblem(keyword, v, [...path, keyword])
      if (found !== undefined) return found
    }
    return undefined
  }

  const keywordProblem = (keyword: string, value: Value, path: ReadonlyArray<Segment>): Problem | undefined => {
    if (keyword === "type") return typeProblem(value, path)
    if (keyword === "additionalProperties" && (value === false || isEmptyNot(value))) {
      return problem(
        path,
        "\"additionalProperties\": false is not supported: a record's undeclared fields are dropped or kept for " +
          "its table's contract, never rejected by its schema; omit it, and refuse unknown fields with a " +
          "Contract (freeze or discard_row)"
      )
    }
    if (keyword === "items" && options.draft07 && Array.isArray(value)) {
      return schemaArray(value, path, false)
    }
    if (schemaKeywords.has(keyword) || (options.draft07 && draft07Keywords.has(keyword))) return schema(value, path)
    if (schemaArrayKeywords.has(keyword)) return schemaArray(value, path, true)
    if (schemaMapKeywords.has(keyword)) {
      if (!Predicate.isObject(value) || Array.isArray(value)) {
        return problem(path, `"${keyword}" must be an object of schemas`)
      }
      for (const [name, v] of Object.entries(value as Record<string, Value>)) {
        const found = schema(v, [...path, name])
        if (found !== undefined) return found
      }
      return undefined
    }
    if (keyword === "required") {
      return Array.isArray(value) && value.every(Predicate.isString)
        ? undefined
        : problem(path, `"required" must be an array of field names, got ${JSON.stringify(value)}`)
    }
    if (keyword === "enum") {
      return Array.isArray(value) ? undefined : problem(path, `"enum" must be an array, got ${JSON.stringify(value)}`)
    }
    if (keyword === "const") return undefined
    // `{ "not": {} }` is "no value" (effect's export of `Never`); any other `not` has no equivalent
    if (keyword === "not" && isEmptySchema(value)) return undefined
    // an annotation of a string's content (effect's export of `fromJsonString`): checked as a schema
    if (keyword === "contentSchema") return schema(value, path)
    if (keyword === "pattern") {
      if (!Predicate.isString(value)) return problem(path, `"pattern" must be a string, got ${JSON.stringify(value)}`)
      return Result.isSuccess(Result.try(() => new RegExp(value, "u")))
        ? undefined
        : problem(path, `invalid regular expression ${JSON.stringify(value)}`)
    }
    if (keyword === "multipleOf") {
      return Predicate.isNumber(value) && Number.isFinite(value) && value > 0
        ? undefined
        : problem(path, `"multipleOf" must be a number greater than 0, got ${JSON.stringify(value)}`)
    }
    if (nonNegativeIntegerKeywords.has(keyword)) {
      return isNonNegativeInteger(value)
        ? undefined
        : problem(path, `"${keyword}" must be a non-negative integer, got ${JSON.stringify(value)}`)
    }
    if (numberKeywords.has(keyword)) {
      return Predicate.isNumber(value) && Number.isFinite(value)
        ? undefined
        : problem(path, `"${keyword}" must be a number, got ${JSON.stringify(value)}`)
    }
    if (stringKeywords.has(keyword)) {
      return Predicate.isString(value)
        ? undefined
        : problem(path, `"${keyword}" must be a string, got ${JSON.stringify(value)}`)
    }
    if (booleanKeywords.has(keyword)) {
      return Predicate.isBoolean(value)
        ? undefined
        : problem(path, `"${keyword}" must be a boolean, got ${JSON.stringify(value)}`)
    }
    if (anyValueKeywords.has(keyword)) {
      return keyword === "examples" && !Array.isArray(value)
        ? problem(path, `"examples" must be an array, got ${JSON.stringify(value)}`)
        : undefined
    }
    if (unsupported.has(keyword)) return problem(path, `unsupported keyword "${keyword}"`)
    return problem(path, `unknown keyword "${keyword}"`)
  }

  const schemaArray = (value: Value, path: ReadonlyArray<Segment>, nonEmpty: boolean): Problem | undefined => {
    if (!Array.isArray(value) || (nonEmpty && value.length === 0)) {
      return problem(path, `"${String(path.at(-1))}" must be a${nonEmpty ? " non-empty" : "n"} array of schemas`)
    }
    for (const [i, v] of value.entries()) {
      const found = schema(v, [...path, i])
      if (found !== undefined) return found
    }
    return undefined
  }

  const typeProblem = (value: Value, path: ReadonlyArray<Segment>): Problem | undefined => {
    const list = Array.isArray(value) ? value : [value]
    if (Array.isArray(value) && value.length === 0) return problem(path, "\"type\" must not be an empty array")
    for (const [i, t] of list.entries()) {
      const at = Array.isArray(value) ? [...path, i] : path
      if (!Predicate.isString(t)) return problem(at, `a type must be a string, got ${JSON.stringify(t)}`)
      if (!types.has(t)) {
        return problem(at, `unknown type ${JSON.stringify(t)} (known: ${[...types].join(", ")})`)
      }
    }
    return undefined
  }

  return schema(document, [])
}

const isSchemaObject = (u: Value): u is Record<string, Value> => Predicate.isObject(u) && !Array.isArray(u)

/** The subschemas of a schema, each with its keyword path: only where the vocabulary has schemas. */
const subschemas = (schema: Record<string, Value>): Array<readonly [ReadonlyArray<Segment>, Value]> => {
  const out: Array<readonly [ReadonlyArray<Segment>, Value]> = []
  for (const [keyword, value] of Object.entries(schema)) {
    if (schemaMapKeywords.has(keyword) && isSchemaObject(value)) {
      for (const [name, v] of Object.entries(value)) out.push([[keyword, name], v])
    } else if ((schemaArrayKeywords.has(keyword) || keyword === "items") && Array.isArray(value)) {
      value.forEach((v, i) => out.push([[keyword, i], v]))
    } else if (schemaKeywords.has(keyword) || draft07Keywords.has(keyword) || keyword === "contentSchema") {
      out.push([[keyword], value])
    }
  }
  return out
}

const hasDefault = (schema: Value): boolean => isSchemaObject(schema) && Object.hasOwn(schema, "default")

/**
 * The properties with a `"default"`, each with its path (`properties.currency`), its schema and its
 * default value: a record may omit them (the default stands in), so they are optional.
 *
 * @internal
 */
export const defaulted = (document: Value): ReadonlyArray<{
  readonly path: string
  readonly schema: Record<string, Value>
  readonly value: Value
}> => {
  const out: Array<{ readonly path: string; readonly schema: Record<string, Value>; readonly value: Value }> = []
  const walk = (schema: Value, path: ReadonlyArray<Segment>): void => {
    if (!isSchemaObject(schema)) return
    const properties = schema["properties"]
    if (isSchemaObject(properties)) {
      for (const [name, property] of Object.entries(properties)) {
        if (hasDefault(property)) {
          const p = property as Record<string, Value>
          out.push({ path: render([...path, "properties", name]), schema: p, value: p["default"] })
        }
      }
    }
    for (const [at, sub] of subschemas(schema)) walk(sub, [...path, ...at])
  }
  walk(document, [])
  return out
}

/**
 * The document with every property that has a `"default"` taken out of its object's `required`
 * (a record without it is complete: the default stands in, as with Avro and Confluent's rules).
 *
 * @internal
 */
export const defaultsOptional = (document: Value): Value => {
  const walk = (schema: Value): Value => {
    if (!isSchemaObject(schema)) return schema
    const out: Record<string, Value> = { ...schema }
    for (const [keyword, value] of Object.entries(schema)) {
      if (schemaMapKeywords.has(keyword) && isSchemaObject(value)) {
        out[keyword] = Object.fromEntries(Object.entries(value).map(([name, v]) => [name, walk(v)]))
      } else if ((schemaArrayKeywords.has(keyword) || keyword === "items") && Array.isArray(value)) {
        out[keyword] = value.map(walk)
      } else if (schemaKeywords.has(keyword) || draft07Keywords.has(keyword) || keyword === "contentSchema") {
        out[keyword] = walk(value)
      }
    }
    const properties = schema["properties"]
    const required = schema["required"]
    if (isSchemaObject(properties) && Array.isArray(required)) {
      out["required"] = required.filter((name) => !(Predicate.isString(name) && hasDefault(properties[name])))
    }
    return out
  }
  return walk(document)
}
