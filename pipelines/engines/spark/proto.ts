/**
 * The Spark Connect protocol, taken from the Spark we run: the `spark/connect/*.proto` files
 * inside its spark-connect jar, extracted once per jar into the de-lab cache (never copied into
 * the repo), loaded with @grpc/proto-loader. A jar is a zip; the few entries we need are read
 * with a small reader of the zip's central directory (no `unzip`/`jar` tool needed).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { EngineUnavailableError } from '../../errors.ts';
import { cacheDir } from './provision.ts';

/** Entries of a zip file whose name passes `keep`, as (name, bytes). */
export function readZipEntries(file: string, keep: (name: string) => boolean): Map<string, Buffer> {
  const zip = readFileSync(file);
  // End of central directory: the last 0x06054b50 record (a comment of up to 64 KiB may follow it).
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new EngineUnavailableError(`Spark: ${basename(file)} is not a zip (no central directory)`);
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let e = 0; e < entries; e++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new EngineUnavailableError(`Spark: ${basename(file)}: bad central directory entry ${e}`);
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (!keep(name)) continue;
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + compressed);
    if (method === 0) out.set(name, Buffer.from(raw));
    else if (method === 8) out.set(name, inflateRawSync(raw));
    else throw new EngineUnavailableError(`Spark: ${basename(file)}: ${name} uses zip method ${method}`);
  }
  return out;
}

/**
 * The folder holding `spark/connect/*.proto` of `jar`, extracted once (per jar file name) into
 * the cache: written aside and renamed into place, so a killed run never leaves half a protocol.
 */
export function protoDir(jar: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = join(cacheDir(env), 'spark-connect-proto', basename(jar, '.jar'));
  if (existsSync(join(dir, 'spark', 'connect', 'base.proto'))) return dir;
  const files = readZipEntries(jar, (n) => /^spark\/connect\/[^/]+\.proto$/.test(n));
  if (!files.has('spark/connect/base.proto')) throw new EngineUnavailableError(`Spark: ${basename(jar)} has no spark/connect/base.proto`);
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  for (const [name, bytes] of files) {
    mkdirSync(dirname(join(tmp, name)), { recursive: true });
    writeFileSync(join(tmp, name), bytes);
  }
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run won the race; its copy is complete
  }
  return dir;
}

/** The client constructor of `spark.connect.SparkConnectService`, from the jar's .proto files. */
export function sparkConnectService(jar: string, env: NodeJS.ProcessEnv = process.env): grpc.ServiceClientConstructor {
  const dir = protoDir(jar, env);
  const def = protoLoader.loadSync('spark/connect/base.proto', {
    includeDirs: [dir],
    keepCase: true,
    // int64 as strings: a BIGINT row count or timestamp never loses digits; we convert.
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { spark: { connect: { SparkConnectService: grpc.ServiceClientConstructor } } };
  return pkg.spark.connect.SparkConnectService;
}
