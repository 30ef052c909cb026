/** Every operation of seven real specs against Prism (test/support/everyOperation.ts). */
import { everyOperation } from "../support/everyOperation.ts"

everyOperation("kubernetes-canary_swagger.json", 531, { AUTH_SCHEME_BEARERTOKEN: "token" })
everyOperation("slack_web_openapi_v2.json", 174, { AUTH_SCHEME_SLACKAUTH: "xoxb-token" })
everyOperation("clickmeter_swagger.yaml", 108, { AUTH_SCHEME_API_KEY: "key" })
everyOperation("apisguru_twilio.com_twilio_verify_v2.json", 53, { AUTH_SCHEME_ACCOUNTSID_AUTHTOKEN: "AC123:secret" })
everyOperation("decentraland-catalyst_api.yaml", 42, {})
everyOperation("apisguru_hubapi.com_automation.json", 16, {
  AUTH_SCHEME_DEVELOPER_HAPIKEY: "key", AUTH_SCHEME_PRIVATE_APPS_LEGACY: "key", AUTH_SCHEME_OAUTH2_LEGACY: "token"
})
// Swagger 2.0 YAML with a list the YAML spec says is under-indented (read as other parsers read it), and no host
everyOperation("pouch-engine_swagger.yaml", 42, {})
