/**
 * Errors of the command line: what the user typed cannot be acted on.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * An argument is invalid (a bad date, an end before a start, a bad number…).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>("@sluice/cli/InvalidArgument")(
  "InvalidArgument",
  { message: Schema.String }
) {}

/**
 * No pipeline of that name is registered.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownPipeline extends Schema.TaggedError<UnknownPipeline>("@sluice/cli/UnknownPipeline")(
  "UnknownPipeline",
  { name: Schema.String, known: Schema.Array(Schema.String) }
) {
  override get message(): string {
    return `unknown pipeline "${this.name}"; known pipelines: ${this.known.join(", ")}`
  }
}
