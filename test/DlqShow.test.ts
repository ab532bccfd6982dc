/**
 * `sluice dlq show` prints a dead letter's whole original record, which is data from outside: on every
 * database backend, its control characters (a terminal escape that clears the screen or sets the
 * window title, a carriage return, a right-to-left override) are shown as escapes rather than sent to
 * the terminal, as `dlq list` shows them; `--raw` prints the record exactly as stored.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

describe("dlq show", () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `shows a payload's control characters as escapes; --raw prints it as stored [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-dlq-show-" })
          const { env } = yield* session.database(cwd)
          const date = "2024-03-01"
          const dir = Path.join(cwd, "orders")
          yield* fs.makeDirectory(dir)
          const good = JSON.stringify({
            order_id: "a",
            customer_id: 1,
            product_category: "books",
            amount: "1",
            order_date: date
          })
          // raw control characters in a JSON string: InvalidJson, kept as sent
          const hostile = "{\"order_id\":\"x\u001b[2J\u001b]0;pwned\u0007\",\"note\":\"\u202eab\u0085\rc\"}"
          yield* fs.writeFileString(Path.join(dir, `${date}.jsonl`), `${good}\n${hostile}\n`)
          yield* SluiceCli.run(cwd, ["run", "daily-revenue", "--date", date, "--source", dir], { env, code: 3 })
          const list = yield* SluiceCli.run(cwd, ["dlq", "list", "daily-revenue", "--date", date], { env, code: 0 })
          const id = new RegExp(`^(\\d+)\\s+${date}\\s+2\\s`, "m").exec(list.stdout)?.[1]
          assert.isDefined(id, list.stdout)

          const show = yield* SluiceCli.run(cwd, ["dlq", "show", "daily-revenue", id!], { env, code: 0 })
          assert.match(show.stdout, /^error type:\s+InvalidJson$/m)
          assert.include(
            show.stdout,
            "original record:\n{\"order_id\":\"x\\x1b[2J\\x1b]0;pwned\\x07\",\"note\":\"\\u202eab\\x85\\x0dc\"}\n"
          )
          // nothing a terminal would obey
          // oxlint-disable-next-line no-control-regex
          assert.notMatch(show.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/)

          const raw = yield* SluiceCli.run(cwd, ["dlq", "show", "daily-revenue", id!, "--raw"], { env, code: 0 })
          assert.isTrue(raw.stdout.endsWith(`original record:\n${hostile}\n`), raw.stdout)
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }
})
