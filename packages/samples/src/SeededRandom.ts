/**
 * A small seeded pseudo-random generator for sample data: mulberry32, with helpers to draw
 * integers, items, weighted items and coin flips, to shuffle, and to derive a day's seed.
 *
 * Sample generators draw from it instead of `Math.random` or the clock, so the same seed always
 * writes the same bytes. Its sequence is part of every generator's output: changing the algorithm
 * or the order of the draws changes every sample file.
 *
 * @since 0.1.0
 */

/**
 * Deterministic draws from a seed.
 *
 * @since 0.1.0
 * @category models
 */
export interface SeededRandom {
  /** A float in [0, 1). */
  readonly next: () => number
  /** An integer in [min, max], both included. */
  readonly int: (min: number, max: number) => number
  /** An item of a non-empty array. */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  /** `true` with probability `p`. */
  readonly chance: (p: number) => boolean
}

/**
 * A generator seeded with `seed` (taken as an unsigned 32-bit integer): mulberry32, a small, fast
 * 32-bit PRNG, good enough for sample data (not for anything secret).
 *
 * **Details**
 *
 * Every helper draws from `next`: `int` and `pick` one draw each, `chance` one draw.
 *
 * @example
 * ```ts
 * import { SeededRandom } from "@sluice/samples"
 *
 * const random = SeededRandom.make(42)
 * random.int(1, 6) // the same number on every run
 * random.pick(["web", "app", "store"])
 * random.chance(0.1)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (seed: number): SeededRandom => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  return { next, int, pick: (items) => items[int(0, items.length - 1)]!, chance: (p) => next() < p }
}

/**
 * The constants of {@link daySeed}'s hash: a generator that already ships files keeps its own, so
 * that its files stay byte for byte the same.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaySeedMixing {
  /** XORed into the seed first. */
  readonly salt: number
  /** Multiplies the salted seed. */
  readonly multiplier: number
  /** Multiplies the hash after each character of the date. */
  readonly step: number
  /** The right shift folded back into the hash after each character. */
  readonly shift: number
}

/**
 * The default {@link DaySeedMixing}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMixing: DaySeedMixing = { salt: 0x9e3779b9, multiplier: 0x85ebca6b, step: 0xc2b2ae35, shift: 13 }

/**
 * The seed of one day of a generator seeded with `seed`: a hash of the seed and the date, so that
 * each day has its own draws and can be generated alone, in any order, with the same result.
 *
 * @example
 * ```ts
 * import { SeededRandom } from "@sluice/samples"
 *
 * const random = SeededRandom.make(SeededRandom.daySeed(7, "2024-03-01"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const daySeed = (seed: number, date: string, mixing: DaySeedMixing = defaultMixing): number => {
  let h = Math.imul(seed ^ mixing.salt, mixing.multiplier)
  for (let i = 0; i < date.length; i++) h = Math.imul(h ^ date.charCodeAt(i), mixing.step) ^ (h >>> mixing.shift)
  return h >>> 0
}

/**
 * Shuffles `items` in place (Fisher–Yates, one draw per item but the first) and returns it.
 *
 * @example
 * ```ts
 * import { SeededRandom } from "@sluice/samples"
 *
 * const order = SeededRandom.shuffle(SeededRandom.make(3), ["2024-03-01", "2024-03-02", "2024-03-03"])
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const shuffle = <A>(random: SeededRandom, items: Array<A>): Array<A> => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(0, i)
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

/**
 * An item drawn with probability proportional to its weight (positive integers), in one draw.
 *
 * @example
 * ```ts
 * import { SeededRandom } from "@sluice/samples"
 *
 * SeededRandom.weighted(SeededRandom.make(1), [["page_view", 50], ["click", 25], ["purchase", 5]])
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const weighted = <A>(random: SeededRandom, items: ReadonlyArray<readonly [item: A, weight: number]>): A => {
  let n = random.int(1, items.reduce((sum, [, weight]) => sum + weight, 0))
  for (const [item, weight] of items) {
    n -= weight
    if (n <= 0) return item
  }
  return items[items.length - 1]![0]
}
