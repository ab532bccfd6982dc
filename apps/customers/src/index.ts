/**
 * The customers sample app: customer change files loaded into slowly changing dimensions of
 * types 1, 2 and 3.
 *
 * @since 0.1.0
 */
export * as Customer from "./Customer.ts"
export * as CustomerScd from "./CustomerScd.ts"
export * as Generator from "./Generator.ts"
export * as Tables from "./Tables.ts"
