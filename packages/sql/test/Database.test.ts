import { assert, describe, it } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { Partition, RunLedger } from "@sluice/core"
import { Database, Merge, SqlSluice, Testing } from "@sluice/sql"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Duplex } from "node:stream"
import * as Url from "node:url"
import * as PgliteDuplex from "../src/internal/pgliteDuplex.ts"
import * as PgliteSession from "../src/internal/pgliteSession.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "sluice-pglite-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A pid that belongs to no running process: the lock file of a process that died. */
const deadPid = () => {
  for (let pid = 4_000_000; pid > 3_000_000; pid -= 7919) {
    try {
      process.kill(pid, 0)
    } catch (error) {
      if ((error as { readonly code?: unknown }).code === "ESRCH") return pid
    }
  }
  throw new Error("no free pid found")
}

describe("Database.checkUrl", () => {
  it.effect("accepts postgres: and postgresql: URLs and refuses others without showing a password", () =>
    Effect.gen(function*() {
      yield* Database.checkUrl("postgres://app@127.0.0.1:5432/app")
      yield* Database.checkUrl(" postgresql://app:pw@db/app ")
      const mysql = yield* Effect.flip(Database.checkUrl("mysql://app:s3cret@db/app"))
      assert.instanceOf(mysql, Database.InvalidDatabaseUrl)
      assert.strictEqual(mysql.url, "mysql://app@db/app")
      assert.notInclude(mysql.message, "s3cret")
      const garbage = yield* Effect.flip(Database.checkUrl("s3cret"))
      assert.strictEqual(garbage.url, "(unparseable)")
      assert.notInclude(garbage.message, "s3cret")
    }))
})

describe("Database.layerPostgres", () => {
  it.live("an unreachable server fails fast with DatabaseUnavailable, without the password in the message", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Database.layerPostgres("postgres://sluice:s3cret@127.0.0.1:1/app")))
      assert.instanceOf(error, Database.DatabaseUnavailable)
      assert.strictEqual(error.message, "database unavailable: postgres://sluice@127.0.0.1:1/app: connection refused")
      assert.notInclude(error.target, "s3cret")
    }))

  it.live.skipIf(Testing.postgresUrl() === undefined)(
    "a database whose DateStyle is not ISO: partitions still read back as YYYY-MM-DD",
    () =>
      Effect.gen(function*() {
        const url = yield* Testing.freshDatabase(Testing.postgresUrl()!)
        const name = new URL(url).pathname.slice(1)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`ALTER DATABASE ${sql(name)} SET datestyle = 'SQL, DMY'`
          yield* sql`ALTER DATABASE ${sql(name)} SET timezone = 'Asia/Kolkata'`
        }).pipe(Effect.provide(Database.layerPostgres(url, { maxConnections: 1 })))
        // a connection made after the ALTER: the database's defaults apply, but for DateStyle
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql<{ readonly day: string; readonly style: string; readonly zone: string }>`
            SELECT '2024-03-01'::date::text AS day, current_setting('datestyle') AS style,
              current_setting('timezone') AS zone`
          assert.deepStrictEqual(row, { day: "2024-03-01", style: "ISO, MDY", zone: "Asia/Kolkata" })
          // the run ledger and the dead-letter store read their partitions back as text
          const ledger = yield* RunLedger.RunLedger
          const day = Partition.makeUnsafe("2024-03-01")
          yield* ledger.start({ runId: "r1", pipeline: "p", partition: day, startedAt: 1_000 })
          assert.deepStrictEqual((yield* ledger.list("p")).map((r) => r.partition), [day])
          assert.deepStrictEqual((yield* ledger.list("p", { start: day, end: day })).map((r) => r.partition), [day])
        }).pipe(Effect.provide(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url)))))
      }).pipe(Effect.scoped)
  )

  it.live.skipIf(Testing.postgresUrl() === undefined)(
    "a database whose transactions default to repeatable read: a load waiting on a merge's lock sees its commit",
    () =>
      Effect.gen(function*() {
        const url = yield* Testing.freshDatabase(Testing.postgresUrl()!)
        const name = new URL(url).pathname.slice(1)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`ALTER DATABASE ${sql(name)} SET default_transaction_isolation = 'repeatable read'`
        }).pipe(Effect.provide(Database.layerPostgres(url, { maxConnections: 1 })))
        interface Row {
          readonly id: number
          readonly name: string
          readonly at: number
        }
        const spec: Merge.Spec<Row> = {
          table: "merged",
          key: ["id"],
          orderBy: "at",
          columns: [{ name: "id", type: "int" }, { name: "name", type: "text" }, { name: "at", type: "bigint" }],
          toRow: (r) => [r.id, r.name, r.at]
        }
        const sink = Merge.make(spec)
        const day = (d: number) => Partition.makeUnsafe(`2024-03-0${d}`)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql.withTransaction(
            sql<{ readonly level: string }>`SELECT current_setting('transaction_isolation') AS level`
          )
          // the merge and dimension locks serialize loads only if each statement sees what committed before it
          assert.strictEqual(row?.level, "read committed")
          yield* sql`CREATE TABLE merged (id int PRIMARY KEY, name text NOT NULL, at bigint NOT NULL)`
          yield* Merge.migrate(spec)
          const read = yield* Deferred.make<void>()
          const first = yield* Deferred.make<void>()
          // a second load has begun (its transaction has read) when the first one commits
          const second = yield* sql.withTransaction(Effect.gen(function*() {
            yield* sql`SELECT count(*) FROM merged`
            yield* Deferred.succeed(read, undefined)
            yield* Deferred.await(first)
            yield* sink.write(day(2), [{ id: 1, name: "second", at: 2 }])
          })).pipe(Effect.forkChild)
          yield* Deferred.await(read)
          yield* sql.withTransaction(sink.write(day(1), [{ id: 1, name: "first", at: 1 }]))
          yield* Deferred.succeed(first, undefined)
          yield* Fiber.join(second)
          const rows = yield* sql<{ readonly id: number; readonly name: string }>`SELECT id, name FROM merged`
          assert.deepStrictEqual(rows, [{ id: 1, name: "second" }])
        }).pipe(Effect.provide(Database.layerPostgres(url)))
      }).pipe(Effect.scoped)
  )

  it.live.skipIf(Testing.postgresUrl() === undefined)(
    "a missing database or role is DatabaseUnavailable with the server's reason",
    () =>
      Effect.gen(function*() {
        const url = new URL(Testing.postgresUrl()!)
        url.pathname = "/sluice_no_such_database"
        const missing = yield* Effect.flip(Layer.build(Database.layerPostgres(url.toString())))
        assert.instanceOf(missing, Database.DatabaseUnavailable)
        assert.strictEqual(missing.reason, "database \"sluice_no_such_database\" does not exist")
        url.username = "sluice_no_such_role"
        const role = yield* Effect.flip(Layer.build(Database.layerPostgres(url.toString())))
        assert.strictEqual(role.reason, "role \"sluice_no_such_role\" does not exist")
      })
  )
})

/**
 * What a new Node process loads while it builds a database layer and runs `SELECT 1` (or fails to
 * reach the server): the modules of `@electric-sql/pglite` its main thread resolves
 * (`module.registerHooks` records every resolution), whether it resolved the SQL driver (the
 * recording works), and the worker threads it started (PGlite runs in one).
 */
const pgliteModulesLoaded = (backend: "postgres" | "pglite", url: string) => {
  const index = Url.pathToFileURL(Path.join(import.meta.dirname, "..", "src", "index.ts")).href
  const script = `
    import { registerHooks } from "node:module"
    const resolved = []
    let workers = 0
    process.on("worker", () => workers++)
    registerHooks({ resolve: (specifier, context, next) => { const r = next(specifier, context); resolved.push(r.url); return r } })
    const { Database } = await import(${JSON.stringify(index)})
    const { Effect, Exit } = await import("effect")
    const { SqlClient } = await import("effect/sql")
    const layer = process.env.BACKEND === "pglite" ? Database.layerPglite({}) : Database.layerPostgres(process.env.URL)
    const exit = await Effect.runPromiseExit(Effect.flatMap(SqlClient.SqlClient, (sql) => sql\`SELECT 1\`).pipe(Effect.provide(layer)))
    console.log(JSON.stringify({
      ok: Exit.isSuccess(exit),
      pglite: resolved.filter((u) => u.includes("@electric-sql/pglite")),
      driver: resolved.some((u) => u.includes("@effect/sql-pg")),
      workers
    }))
  `
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: Path.join(import.meta.dirname, "..", "..", ".."),
    env: { ...process.env, BACKEND: backend, URL: url },
    encoding: "utf8",
    timeout: 60_000
  })
  const line = child.stdout.split("\n").find((l) => l.startsWith("{"))
  assert.isDefined(line, `child printed no result: ${child.stderr}`)
  return JSON.parse(line!) as {
    readonly ok: boolean
    readonly pglite: ReadonlyArray<string>
    readonly driver: boolean
    readonly workers: number
  }
}

describe("Database: PGlite is loaded only when used", () => {
  it(
    "a process on PostgreSQL never loads @electric-sql/pglite nor starts a thread; one on PGlite runs it in a worker thread",
    () => {
      const url = Testing.postgresUrl()
      // with no server configured, the layer's connection fails: PGlite must not be loaded either way
      const postgres = pgliteModulesLoaded("postgres", url ?? "postgres://sluice@127.0.0.1:1/none")
      assert.strictEqual(postgres.ok, url !== undefined)
      assert.deepStrictEqual(postgres.pglite, [])
      assert.strictEqual(postgres.workers, 0)
      assert.isTrue(postgres.driver, "the recording sees the modules resolved")
      // PGlite is loaded by its worker thread, not by the main thread
      const pglite = pgliteModulesLoaded("pglite", "")
      assert.isTrue(pglite.ok)
      assert.strictEqual(pglite.workers, 1)
      assert.deepStrictEqual(pglite.pglite, [])
    },
    120_000
  )
})

describe("Database.layerPglite runs PGlite in a worker thread", () => {
  it.live("this thread's timers run while PGlite executes a statement", () =>
    Effect.gen(function*() {
      const sql = Context.get(yield* Layer.build(Database.layerPglite({ dataDir: undefined })), SqlClient.SqlClient)
      yield* sql`SELECT 1`
      let ticks = 0
      const timer = setInterval(() => ticks++, 10)
      const started = performance.now()
      yield* sql`SELECT pg_sleep(1)`
      const elapsed = performance.now() - started
      clearInterval(timer)
      assert.isAtLeast(elapsed, 1_000)
      // in this thread, PGlite would block the event loop for the whole second: no tick at all
      assert.isAbove(ticks, 20, `${ticks} ticks of 10 ms in ${Math.round(elapsed)} ms`)
    }).pipe(Effect.scoped))

  it.live("a data directory PGlite cannot open fails with DatabaseUnavailable and PGlite's reason", () =>
    Effect.gen(function*() {
      // a data directory of a PostgreSQL version that does not exist
      const dataDir = Path.join(yield* tempDir, "pglite")
      Fs.mkdirSync(dataDir)
      Fs.writeFileSync(Path.join(dataDir, "PG_VERSION"), "9\n")
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Database.layerPglite({ dataDir }))))
      assert.instanceOf(error, Database.DatabaseUnavailable)
      assert.match(error.reason, /^cannot open PGlite: /)
      assert.strictEqual(error.target, dataDir)
      assert.isFalse(Fs.existsSync(Path.join(dataDir, "pglite.lock")), "the lock is released")
    }))
})

describe("Database.layerPglite on disk", () => {
  it.live("locks its data directory against a second opener, replaces stale locks, and persists", () =>
    Effect.gen(function*() {
      const dataDir = Path.join(yield* tempDir, "pglite")
      const lockFile = Path.join(dataDir, "pglite.lock")
      // a half-written lock file (no pid) is stale
      Fs.mkdirSync(dataDir, { recursive: true })
      Fs.writeFileSync(lockFile, "")
      const first = yield* Scope.make()
      const db = yield* Layer.buildWithScope(Database.layerPglite({ dataDir }), first)
      assert.strictEqual(Fs.readFileSync(lockFile, "utf8"), String(process.pid))
      assert.strictEqual(Context.get(db, Database.Backend), "pglite")
      const sql = Context.get(db, SqlClient.SqlClient)
      yield* sql`CREATE TABLE kept (id int)`
      yield* sql`INSERT INTO kept VALUES (42)`

      const locked = yield* Effect.flip(Effect.scoped(Layer.build(Database.layerPglite({ dataDir }))))
      assert.instanceOf(locked, Database.DataDirLocked)
      assert.deepStrictEqual([locked.dataDir, locked.pid], [dataDir, process.pid])

      yield* Scope.close(first, Exit.void)
      assert.isFalse(Fs.existsSync(lockFile), "released with its layer")

      // a lock file left by a process that died is stale too
      Fs.writeFileSync(lockFile, String(deadPid()))
      const again = yield* Layer.build(Database.layerPglite({ dataDir }))
      const rows = yield* Context.get(again, SqlClient.SqlClient)`SELECT id FROM kept`
      assert.deepStrictEqual(rows, [{ id: 42 }])
    }))
})

const startup = (): Buffer => {
  const body = Buffer.from("user\0postgres\0database\0postgres\0\0")
  const message = Buffer.alloc(8 + body.length)
  message.writeInt32BE(message.length, 0)
  message.writeInt32BE(196608, 4)
  body.copy(message, 8)
  return message
}

const query = (text: string): Buffer => {
  const body = Buffer.from(`${text}\0`)
  const message = Buffer.alloc(5 + body.length)
  message.write("Q", 0)
  message.writeInt32BE(4 + body.length, 1)
  body.copy(message, 5)
  return message
}

const cancelRequest = (): Buffer => {
  const message = Buffer.alloc(16)
  message.writeInt32BE(16, 0)
  message.writeInt32BE(80877102, 4)
  message.writeInt32BE(1, 8)
  message.writeInt32BE(2, 12)
  return message
}

/** Waits until the link has answered with ReadyForQuery in the given transaction status. */
const readyFor = (link: Duplex, status: "I" | "T") =>
  Effect.callback<void>((resume) => {
    let received = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const tail = received.subarray(-6)
      if (tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5 && tail[5] === status.charCodeAt(0)) {
        link.off("data", onData)
        resume(Effect.void)
      }
    }
    link.on("data", onData)
    return Effect.sync(() => link.off("data", onData))
  })

const closed = (link: Duplex) =>
  Effect.callback<void>((resume) => {
    if (link.closed) return resume(Effect.void)
    link.once("close", () => resume(Effect.void))
  })

describe("PGlite wire link (internal/pgliteDuplex)", () => {
  const pglite = Effect.acquireRelease(Effect.promise(() => PGlite.create()), (db) => Effect.promise(() => db.close()))

  it.live("the session's link rolls back the session's transaction when it goes away mid-transaction", () =>
    Effect.gen(function*() {
      const db = yield* pglite
      yield* Effect.promise(() => db.exec("CREATE TABLE t (x int)"))
      const link = PgliteDuplex.make(PgliteSession.inProcess(db))
      link.write(Buffer.concat([startup(), query("BEGIN; INSERT INTO t VALUES (1)")]))
      yield* readyFor(link, "T")
      assert.isTrue(db.isInTransaction())
      link.destroy()
      yield* closed(link)
      assert.isFalse(db.isInTransaction())
      assert.deepStrictEqual((yield* Effect.promise(() => db.query("SELECT x FROM t"))).rows, [])

      // and the cancel link of a driver does not: the session's transaction goes on and commits
      yield* Effect.promise(() => db.exec("BEGIN; INSERT INTO t VALUES (2)"))
      const cancel = PgliteDuplex.make(PgliteSession.inProcess(db))
      cancel.write(cancelRequest())
      // like a server, the link ends after a cancel request (PGlite has nothing to cancel)
      const endedByItself = Option.isSome(yield* Effect.timeoutOption(closed(cancel), "2 seconds"))
      // the driver destroys the cancel link when it is done with it
      cancel.destroy()
      yield* closed(cancel)
      assert.isTrue(db.isInTransaction(), "closing a cancel link does not roll the session back")
      assert.isTrue(endedByItself)
      yield* Effect.promise(() => db.exec("INSERT INTO t VALUES (3); COMMIT"))
      assert.deepStrictEqual((yield* Effect.promise(() => db.query("SELECT x FROM t ORDER BY x"))).rows, [{ x: 2 }, {
        x: 3
      }])
    }))
})
