import { Config, ConfigProvider, Effect } from "effect"
const c = Config.all({
  port: Config.Port("SERVER_PORT").pipe(Config.withDefault(8000)),
  t: Config.Literals(["stdio", "http"], "SERVER_TRANSPORT").pipe(Config.withDefault("stdio" as const)),
  n: Config.Int("HTTP_TIMEOUT").pipe(Config.withDefault(30)),
  b: Config.Boolean("ENABLE_PROMETHEUS").pipe(Config.withDefault(false)),
})
for (const env of [{ SERVER_PORT: "abc" }, { SERVER_TRANSPORT: "sse" }, { HTTP_TIMEOUT: "1.5" }, {ENABLE_PROMETHEUS: "yes"}, {SERVER_PORT: "99999"}]) {
  const r = Effect.runSync(Effect.result((c as any).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))))
  console.log(JSON.stringify(env), r._tag === "Failure" ? String(r.failure) : JSON.stringify(r.success))
}
