/**
 * A pure, in-memory model of the slowly changing dimensions of `Scd`, written from the rules in
 * the module documentation as a walk over each key's history (no windows, no SQL), to compare
 * the database against.
 */

/** A change as loaded: its attribute values by name. */
export interface ModelChange {
  readonly key: number
  /** Epoch milliseconds, already defaulted to the partition's start. */
  readonly at: number
  readonly values: Readonly<Record<string, string | null>>
  readonly deleted: boolean
}

/** The final change log: per partition (in partition order), its changes in arrival order. */
export type ChangeLog = ReadonlyArray<ReadonlyArray<ModelChange>>

export const openEnd = Date.UTC(9999, 11, 31)

/**
 * Each key's history: one change per timestamp (the latest arrival, i.e. the greatest
 * (partition, position), wins), in timestamp order. Deletes are dropped first when ignored.
 */
export const histories = (
  log: ChangeLog,
  options: { readonly dropDeletes: boolean }
): Map<number, Array<ModelChange>> => {
  const winners = new Map<string, ModelChange>()
  log.forEach((changes) => {
    for (const change of changes) {
      if (options.dropDeletes && change.deleted) continue
      // later partitions and later positions overwrite earlier ones
      winners.set(`${change.key}@${change.at}`, change)
    }
  })
  const byKey = new Map<number, Array<ModelChange>>()
  for (const change of winners.values()) {
    const list = byKey.get(change.key) ?? []
    list.push(change)
    byKey.set(change.key, list)
  }
  for (const list of byKey.values()) list.sort((a, b) => a.at - b.at)
  return byKey
}

export interface Type1Row {
  readonly key: number
  readonly values: Readonly<Record<string, string | null>>
  readonly lastChangedAt: number
}

export const type1 = (log: ChangeLog, deletes: "ignore" | "delete"): Array<Type1Row> => {
  const rows: Array<Type1Row> = []
  for (const [key, history] of histories(log, { dropDeletes: deletes === "ignore" })) {
    const latest = history[history.length - 1]!
    if (!latest.deleted) rows.push({ key, values: latest.values, lastChangedAt: latest.at })
  }
  return rows
}

export interface Type2Row {
  readonly key: number
  readonly values: Readonly<Record<string, string | null>>
  readonly start: number
  readonly end: number
  readonly current: boolean
  readonly deleted: boolean
}

const sameTracked = (
  tracked: ReadonlyArray<string>,
  a: Readonly<Record<string, string | null>>,
  b: Readonly<Record<string, string | null>>
) => tracked.every((name) => a[name] === b[name])

export const type2 = (
  log: ChangeLog,
  tracked: ReadonlyArray<string>,
  deletes: "ignore" | "close" | "version"
): Array<Type2Row> => {
  const rows: Array<Type2Row> = []
  for (const [key, history] of histories(log, { dropDeletes: deletes === "ignore" })) {
    const versions: Array<{ start: number; end: number; values: Record<string, string | null>; deleted: boolean }> = []
    // the state the key is in: none yet, an open (live or deleted) version, or closed by a delete
    let state: "none" | "live" | "deleted" = "none"
    const open = () => versions[versions.length - 1]!
    for (const change of history) {
      if (change.deleted) {
        if (state !== "live") continue
        open().end = change.at
        if (deletes === "version") {
          versions.push({ start: change.at, end: openEnd, values: { ...open().values }, deleted: true })
        }
        state = "deleted"
      } else if (state === "live" && sameTracked(tracked, open().values, change.values)) {
        open().values = { ...change.values }
      } else {
        if (state === "live" || (state === "deleted" && deletes === "version")) open().end = change.at
        versions.push({ start: change.at, end: openEnd, values: { ...change.values }, deleted: false })
        state = "live"
      }
    }
    for (const v of versions) rows.push({ key, ...v, current: v.end === openEnd })
  }
  return rows
}

export interface Type3Row {
  readonly key: number
  readonly values: Readonly<Record<string, string | null>>
  readonly previous: Readonly<Record<string, string | null>>
  readonly lastChangedAt: number
}

export const type3 = (
  log: ChangeLog,
  tracked: ReadonlyArray<string>,
  deletes: "ignore" | "delete"
): Array<Type3Row> => {
  const rows: Array<Type3Row> = []
  for (const [key, history] of histories(log, { dropDeletes: deletes === "ignore" })) {
    if (history[history.length - 1]!.deleted) continue
    let current: Readonly<Record<string, string | null>> | undefined
    let at = 0
    const previous: Record<string, string | null> = Object.fromEntries(tracked.map((name) => [name, null]))
    for (const change of history) {
      if (change.deleted) continue
      if (current !== undefined) {
        for (const name of tracked) if (current[name] !== change.values[name]) previous[name] = current[name] ?? null
      }
      current = change.values
      at = change.at
    }
    rows.push({ key, values: current!, previous, lastChangedAt: at })
  }
  return rows
}

/**
 * The tracked values of each key at instant `at` (type 2), straight from the history: the last
 * change at or before `at` decides; a delete hides the key (`close`), or shows the values before
 * it, deleted (`version`). Untracked values are left out: they are the version's latest.
 */
export const snapshotAt = (
  log: ChangeLog,
  tracked: ReadonlyArray<string>,
  deletes: "ignore" | "close" | "version",
  at: number
): Map<number, { readonly values: Readonly<Record<string, string | null>>; readonly deleted: boolean }> => {
  const out = new Map<number, { values: Record<string, string | null>; deleted: boolean }>()
  for (const [key, history] of histories(log, { dropDeletes: deletes === "ignore" })) {
    let live: ModelChange | undefined
    let deleted = false
    for (const change of history) {
      if (change.at > at) break
      if (change.deleted) {
        if (live !== undefined) deleted = true
      } else {
        live = change
        deleted = false
      }
    }
    if (live === undefined || (deleted && deletes === "close")) continue
    out.set(key, { values: Object.fromEntries(tracked.map((name) => [name, live.values[name] ?? null])), deleted })
  }
  return out
}
