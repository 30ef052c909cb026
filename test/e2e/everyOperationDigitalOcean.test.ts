/**
 * Every operation of the DigitalOcean spec (2,900 files joined by $refs, operations that are $refs) against
 * Prism (test/support/everyOperation.ts); a file of its own so it runs beside the others.
 */
import { everyOperation } from "../support/everyOperation.ts"

everyOperation("digitalocean_multifile/specification/DigitalOcean-public.v2.yaml", 659, {
  AUTH_SCHEME_BEARER_AUTH: "token", AUTH_SCHEME_INFERENCE_BEARER_AUTH: "token"
})
