/**
 * The serve command's defence against other web sites (`Serve.refusal`): which requests it refuses,
 * by bound address, `Host`, `Origin` and `Sec-Fetch-Site`. The end-to-end check, through the CLI's
 * server, is in `Operate.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Serve from "../packages/cli/src/Serve.ts"

const request = (method: string, headers: Record<string, string>) => ({ method, headers })

describe("Serve.refusal", () => {
  it("bound to a loopback address, answers loopback names only (DNS rebinding)", () => {
    for (const bound of ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]) {
      for (
        const host of ["127.0.0.1:9464", "localhost:9464", "LOCALHOST", "[::1]:9464", "app.localhost:1", "127.1.2.3"]
      ) {
        assert.isUndefined(Serve.refusal(request("GET", { host }), bound), `${bound} ${host}`)
      }
      for (const host of ["attacker.example", "attacker.example:9464", "127.0.0.1.attacker.example", "10.0.0.1", ""]) {
        assert.match(Serve.refusal(request("GET", { host }), bound) ?? "", /localhost only/, `${bound} ${host}`)
      }
      assert.match(Serve.refusal(request("GET", {}), bound) ?? "", /localhost only/)
    }
  })

  it("bound to another address, answers any name: the server was exposed on purpose", () => {
    for (const bound of ["0.0.0.0", "::", "10.0.0.5"]) {
      assert.isUndefined(Serve.refusal(request("GET", { host: "dashboard.internal:9464" }), bound))
    }
  })

  it("refuses a POST from another origin, or from a browser that says it is cross-site", () => {
    const host = "127.0.0.1:9464"
    const refused: ReadonlyArray<Record<string, string>> = [
      { host, origin: "https://attacker.example" },
      { host, origin: "http://127.0.0.1:9999" },
      { host, origin: "http://localhost:9464" },
      { host, origin: "null" },
      { host, origin: "not a url" },
      { host, "sec-fetch-site": "cross-site" }
    ]
    for (const headers of refused) {
      assert.isDefined(Serve.refusal(request("POST", headers), "127.0.0.1"), JSON.stringify(headers))
      // reading is not changing anything: the same GET is answered
      assert.isUndefined(Serve.refusal(request("GET", headers), "127.0.0.1"), JSON.stringify(headers))
    }
    const accepted: ReadonlyArray<Record<string, string>> = [
      { host, origin: "http://127.0.0.1:9464" },
      { host, origin: "http://127.0.0.1:9464", "sec-fetch-site": "same-origin" },
      { host },
      { host: "[::1]:9464", origin: "http://[::1]:9464" }
    ]
    for (const headers of accepted) {
      assert.isUndefined(Serve.refusal(request("POST", headers), "127.0.0.1"), JSON.stringify(headers))
    }
  })
})
