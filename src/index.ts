/** Library entry: the AWS Lambda handler and the pieces to embed the server. The CLI is `bin/cli.js`. */
export { handler } from "./Lambda.ts"
export type { HttpEventV2, HttpResultV2 } from "./Lambda.ts"
export { AppConfig } from "./AppConfig.ts"
export { AppLayer, LoggingLayer } from "./Main.ts"
export { McpServer } from "./McpServer.ts"
