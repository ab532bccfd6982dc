import { assert, describe, it } from "@effect/vitest"
import { Table } from "@sluice/cli"

describe("Table.truncate", () => {
  it("shows control characters and the invisible ones that move or hide text as escapes", () => {
    assert.strictEqual(Table.truncate("a\rb\tc\u001b[31m", 60), "a\\x0db\\x09c\\x1b[31m")
    // C1 controls: NEL ends a line, CSI starts a terminal escape
    assert.strictEqual(Table.truncate("x\u0085y\u009b", 60), "x\\x85y\\x9b")
    // a right-to-left override would show the rest of the row reversed; separators and zero-width characters
    assert.strictEqual(
      Table.truncate("{\"id\":\"\u202eabc\u2028\u200b\ufeff\u2066\"}", 60),
      "{\"id\":\"\\u202eabc\\u2028\\u200b\\ufeff\\u2066\"}"
    )
  })

  it("leaves visible text as it is, and counts characters (not UTF-16 units) when it cuts", () => {
    assert.strictEqual(Table.truncate("café 😀 \u05d0\u05d1 e\u0301 \u00a0", 60), "café 😀 \u05d0\u05d1 e\u0301 \u00a0")
    assert.strictEqual(Table.truncate("😀".repeat(10), 5), "😀😀😀😀…")
    assert.strictEqual(Table.truncate("\u202e".repeat(3), 60), "\\u202e".repeat(3))
  })
})

describe("Table.showInvisible", () => {
  it("shows a whole text's control and invisible characters as escapes, line feeds and tabs kept", () => {
    assert.strictEqual(
      Table.showInvisible("{\"id\":\"x\u001b[2J\u001b]0;title\u0007\"}\r\u0085\u202eab\tc\nd"),
      "{\"id\":\"x\\x1b[2J\\x1b]0;title\\x07\"}\\x0d\\x85\\u202eab\tc\nd"
    )
    assert.strictEqual(Table.showInvisible("café 😀 {\"a\":1}"), "café 😀 {\"a\":1}")
  })
})
