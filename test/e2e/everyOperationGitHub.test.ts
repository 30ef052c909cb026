/**
 * Every operation of the GitHub REST spec (1,223) against Prism (test/support/everyOperation.ts); a file of its
 * own so it runs beside the others. Prism refuses any number for a path parameter whose schema is `oneOf`
 * integer or string (a number matches both, and oneOf wants exactly one): GitHub's workflow_id and
 * pages_deployment_id. Those refusals are Prism's, not the request's.
 */
import { everyOperation } from "../support/everyOperation.ts"

everyOperation("github_api.github.com.json", 1223, {}, /Request path parameter \w+ must match exactly one schema in oneOf$/)
