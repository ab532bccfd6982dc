/**
 * `pnpm sluice …`: the Sluice CLI with every sample pipeline registered.
 *
 * @since 0.1.0
 */
import { Main, Telemetry } from "@sluice/cli"
import { root, version } from "./Cli.ts"

Main.run(root, Telemetry.layerFromEnv({ serviceVersion: version }), { version })
