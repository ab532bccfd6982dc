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
 * Whether the test server accepts a TCP connection within a second.
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
export const reachable = (): Promise<boolean> =>
  new Promise((resolve) => {
    const [host, port] = servers.replace(/^nats:\/\//, "").split(",")[0]!.split(":")
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
