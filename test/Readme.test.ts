import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "..")

describe("README", () => {
  it("its pipeline example is the typechecked test/examples/readme.ts", () => {
    const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
    const block = /## Defining a pipeline\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.isDefined(block)
    assert.strictEqual(block, Fs.readFileSync(Path.join(root, "test/examples/readme.ts"), "utf8"))
  })
})
