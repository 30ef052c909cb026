/**
 * A small certificate authority made with openssl for the mutual TLS tests: a CA, a server certificate for
 * 127.0.0.1 and client certificates it signed, written as PEM files to a fresh directory.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const openssl = (args: ReadonlyArray<string>) => execFileSync("openssl", args, { stdio: "ignore" })

export const makePki = () => {
  const dir = mkdtempSync(join(tmpdir(), "pki-"))
  const file = (name: string) => join(dir, name)
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "2", "-subj", "/CN=Test CA"])
  /** A key and a certificate for `cn` signed by the CA (`ext`: its extensions, e.g. a subjectAltName). */
  const issue = (name: string, cn: string, ext?: string) => {
    openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${cn}`])
    if (ext !== undefined) writeFileSync(file(`${name}.ext`), ext)
    openssl([
      "x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial",
      "-out", file(`${name}.pem`), "-days", "1", ...(ext !== undefined ? ["-extfile", file(`${name}.ext`)] : [])
    ])
    return { key: file(`${name}.key`), cert: file(`${name}.pem`) }
  }
  const server = issue("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\n")
  const client = issue("client", "omcp-test-client")
  const other = issue("other", "someone-else")
  // the client's key encrypted with a passphrase
  const encryptedKey = file("client-encrypted.key")
  openssl(["pkcs8", "-topk8", "-in", client.key, "-out", encryptedKey, "-passout", "pass:correct horse"])
  const read = (path: string) => readFileSync(path, "utf8")
  return { dir, ca: file("ca.pem"), server, client, other, encryptedKey, passphrase: "correct horse", read }
}
