/**
 * The NATS server of tests: where it is, and whether it answers.
 *
 * Streaming tests need nats-server with JetStream at `SLUICE_TEST_NATS_URL` (default
 * `127.0.0.1:4222`). Without it they are skipped, except on CI (`CI` set), where they must fail:
 * {@link required} says which.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"

/**
 * The NATS servers of the tests, from `SLUICE_TEST_NATS_URL` (default `127.0.0.1:4222`).
 *
 * @since 0.1.0
 * @category config
 */
export const servers: string = process.env["SLUICE_TEST_NATS_URL"] ?? "127.0.0.1:4222"

/**
 * Whether the test server (`target`, default {@link servers}) accepts a TCP connection within a second.
 *
 * @example
 * ```ts
 * import { Testing } from "@sluice/nats"
 *
 * const reachable = await Testing.reachable()
 * ```
 *
 * @since 0.1.0
 * @category checks
 */
export const reachable = (target: string = servers): Promise<boolean> =>
  new Promise((resolve) => {
    const [host, port] = target.replace(/^nats:\/\//, "").split(",")[0]!.split(":")
    const socket = Net.connect({ host: host || "127.0.0.1", port: Number(port || 4222) })
    socket.setTimeout(1_000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
  })

/**
 * Whether the tests must reach NATS: on CI (`CI` set and not empty) an unreachable server is a
 * failure, not a reason to skip.
 *
 * @example
 * ```ts
 * import { Testing } from "@sluice/nats"
 *
 * if (Testing.required && !(await Testing.reachable())) throw new Error(`no NATS at ${Testing.servers}`)
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const required: boolean = (process.env["CI"] ?? "") !== ""

/**
 * Whether the test server answers ({@link reachable}); when it does not and the tests must reach it
 * ({@link required}), also registers, with `test` (vitest's `it`), a test that fails naming the server,
 * so that on CI the file fails instead of skipping its NATS suites. Call it at the top level of a test
 * file and skip the suites that need NATS when it gives `false`.
 *
 * `options` replace {@link servers} and {@link required} (for testing this function itself).
 *
 * @example
 * ```ts
 * import { describe, it } from "@effect/vitest"
 * import { Testing } from "@sluice/nats"
 *
 * const reachable = await Testing.reachableOrFail(it)
 *
 * describe.skipIf(!reachable)(`my stream (NATS at ${Testing.servers})`, () => {
 *   // …
 * })
 * ```
 *
 * @since 0.1.0
 * @category checks
 */
export const reachableOrFail = async (
  test: (name: string, body: () => void) => unknown,
  options: { readonly servers?: string | undefined; readonly required?: boolean | undefined } = {}
): Promise<boolean> => {
  const target = options.servers ?? servers
  const answers = await reachable(target)
  if (!answers && (options.required ?? required)) {
    test("NATS JetStream is reachable", () => {
      throw new Error(`NATS is required on CI (CI is set) and does not answer at ${target}`)
    })
  }
  return answers
}
