/**
 * Sluice samples: what the sample apps' data generators share — a seeded PRNG, bad lines and
 * their expected errors, and the day files they write with their manifests.
 *
 * @since 0.1.0
 */
export * as BadLines from "./BadLines.ts"
export * as DayFiles from "./DayFiles.ts"
export * as SeededRandom from "./SeededRandom.ts"
