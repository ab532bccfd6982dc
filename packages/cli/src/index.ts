/**
 * The Sluice command line, generic over a registry of pipelines.
 *
 * @since 0.1.0
 */
export * as CliError from "./CliError.ts"
export * as Commands from "./Commands.ts"
export * as Main from "./Main.ts"
export * as Registry from "./Registry.ts"
export * as SchemaCommands from "./SchemaCommands.ts"
export * as Serve from "./Serve.ts"
export * as Table from "./Table.ts"
export * as Telemetry from "./Telemetry.ts"
