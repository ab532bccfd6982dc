/**
 * `pnpm sluice …`: the Sluice CLI with every sample pipeline registered.
 *
 * @since 0.1.0
 */
import { Main } from "@sluice/cli"
import { Layer } from "effect"
import { root, version } from "./Cli.ts"

Main.run(root, Layer.empty, { version })
